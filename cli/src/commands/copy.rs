//! `zcopy copy SRC DST`: one transfer between two paths (`-` for stdin / stdout).

use std::path::Path;

use zcopy_core::Method;

use super::{CliResult, Endpoint, drive, finish, options};
use crate::TransferArgs;

/// Copies `src` to `dst` with the requested method, from `offset`, at most `count` bytes.
pub fn run(
    src: &Path,
    dst: &Path,
    offset: Option<u64>,
    count: Option<u64>,
    append: bool,
    args: &TransferArgs,
    quiet: bool,
) -> CliResult {
    let s = Endpoint::open_src(src)?;
    let d = Endpoint::open_dst(dst, append, Some(&s))?;
    let mut opts = options(args, Method::Auto);
    opts.offset = offset;
    opts.count = count;
    finish("copied", drive(&s, &d, &opts, quiet), quiet)
        .map_err(|e| format!("{} -> {}: {e}", src.display(), dst.display()))
}
