//! `zcopy probe`: which transfer methods this kernel supports, and the limits that matter.

use zcopy_core::{Method, capabilities};

use super::CliResult;

/// Prints the capability table on stdout.
pub fn run() -> CliResult {
    let caps = capabilities();
    let kernel = read_trimmed("/proc/sys/kernel/osrelease").unwrap_or_else(|| "unknown".into());
    println!(
        "zcopy {} on Linux {kernel} ({})",
        zcopy_core::VERSION,
        std::env::consts::ARCH
    );
    println!();
    println!("{:<16} {:<10} what", "method", "supported");
    for m in Method::ALL {
        let ok = if caps.supports(m) { "yes" } else { "no" };
        println!("{:<16} {:<10} {}", m.name(), ok, describe(m));
    }
    println!();
    if let Some(max) = read_trimmed("/proc/sys/fs/pipe-max-size") {
        println!("pipe-max-size    {max} bytes (splice moves at most one pipe's worth per call)");
    }
    if let Some(v) = read_trimmed("/proc/sys/net/core/optmem_max") {
        println!("optmem_max       {v} bytes (bounds in-flight MSG_ZEROCOPY notifications)");
    }
    Ok(())
}

fn describe(m: Method) -> &'static str {
    match m {
        Method::Auto => "picks the cheapest path per fd pair, falls back at run time",
        Method::ReadWrite => "read(2) + write(2) through a buffer: works for everything",
        Method::Mmap => "mmap(2) the source file, write(2) from the mapping",
        Method::Sendfile => "sendfile(2): file -> anything, in the kernel",
        Method::Splice => "splice(2) through a pipe: file/pipe/socket -> anything",
        Method::CopyFileRange => "copy_file_range(2): file -> file, in-kernel copy or reflink",
        Method::MsgZerocopy => "send(2) with MSG_ZEROCOPY from a mapping: file -> TCP",
    }
}

fn read_trimmed(path: &str) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().to_owned())
}
