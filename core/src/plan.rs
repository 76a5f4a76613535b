//! Which method for which fd pair, and the fallback chain.
//!
//! | source \ destination | regular file | pipe | stream socket | char device |
//! |---|---|---|---|---|
//! | regular file | copy_file_range, sendfile, read_write | sendfile, splice, read_write | sendfile, splice, read_write | sendfile, splice, read_write |
//! | pipe / socket / char device | splice, read_write | splice, read_write | splice, read_write | splice, read_write |
//!
//! `mmap` and `msg_zerocopy` are never picked by Auto: `mmap` + `write` costs the same copy as
//! `read`/`write` minus one syscall but faults pages in one by one, and MSG_ZEROCOPY only pays
//! off for large sends on a NIC that does scatter-gather (on loopback the kernel copies anyway).

use crate::error::{Error, Result};
use crate::fd::{FdInfo, FdKind};
use crate::method::Method;

/// Why `method` cannot move bytes from `src` to `dst`, or `Ok` if it can.
pub(crate) fn applies(
    method: Method,
    src: &FdInfo,
    dst: &FdInfo,
) -> std::result::Result<(), String> {
    let file_src = matches!(src.kind, FdKind::Regular | FdKind::Block);
    let append_file = dst.append() && matches!(dst.kind, FdKind::Regular | FdKind::Block);
    match method {
        Method::Auto | Method::ReadWrite => Ok(()),
        Method::Mmap if !matches!(src.kind, FdKind::Regular) => {
            Err("mmap needs a regular file as the source".into())
        }
        Method::Mmap => Ok(()),
        Method::Sendfile if !file_src => {
            Err("sendfile needs a regular file or block device as the source".into())
        }
        Method::Sendfile if append_file => Err("sendfile cannot write to an O_APPEND file".into()),
        Method::Sendfile => Ok(()),
        Method::Splice if append_file => Err("splice cannot write to an O_APPEND file".into()),
        Method::Splice => Ok(()),
        Method::CopyFileRange if !(src.kind == FdKind::Regular && dst.kind == FdKind::Regular) => {
            Err("copy_file_range needs regular files on both sides".into())
        }
        Method::CopyFileRange if append_file => {
            Err("copy_file_range cannot write to an O_APPEND file".into())
        }
        Method::CopyFileRange => Ok(()),
        Method::MsgZerocopy if src.kind != FdKind::Regular => {
            Err("msg_zerocopy needs a regular file as the source".into())
        }
        Method::MsgZerocopy if !dst.is_tcp() => Err(
            "msg_zerocopy needs a TCP socket as the destination (Unix sockets cannot do it)".into(),
        ),
        Method::MsgZerocopy => Ok(()),
    }
}

/// The methods Auto tries for this pair, best first.
fn auto_chain(src: &FdInfo, dst: &FdInfo) -> Vec<Method> {
    let candidates: &[Method] = match (src.kind, dst.kind) {
        (FdKind::Regular, FdKind::Regular) => {
            &[Method::CopyFileRange, Method::Sendfile, Method::ReadWrite]
        }
        (FdKind::Regular | FdKind::Block, _) => {
            &[Method::Sendfile, Method::Splice, Method::ReadWrite]
        }
        _ => &[Method::Splice, Method::ReadWrite],
    };
    candidates
        .iter()
        .copied()
        .filter(|m| applies(*m, src, dst).is_ok())
        .collect()
}

/// The chain of methods to try, first to last, and the reason the requested method was
/// skipped when it does not apply but fallback is allowed.
pub(crate) fn chain(
    method: Method,
    fallback: bool,
    src: &FdInfo,
    dst: &FdInfo,
) -> Result<(Vec<Method>, Option<String>)> {
    if method == Method::Auto {
        return Ok((auto_chain(src, dst), None));
    }
    match applies(method, src, dst) {
        Ok(()) if !fallback => Ok((vec![method], None)),
        Ok(()) => {
            let mut chain = vec![method];
            chain.extend(auto_chain(src, dst).into_iter().filter(|m| *m != method));
            Ok((chain, None))
        }
        Err(why) if fallback => Ok((auto_chain(src, dst), Some(why))),
        Err(why) => Err(Error::unsupported(format!("{method}: {why}"))),
    }
}
