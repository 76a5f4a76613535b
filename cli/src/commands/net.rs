//! `zcopy send FILE HOST:PORT` and `zcopy recv ADDR FILE`: one TCP connection each way.

use std::net::{TcpListener, TcpStream};
use std::path::Path;

use zcopy_core::Method;

use super::{CliResult, Endpoint, drive, finish, options};
use crate::TransferArgs;

/// Connects to `addr` and sends `file` (or stdin) over it; Auto by default (sendfile).
pub fn send(file: &Path, addr: &str, args: &TransferArgs, quiet: bool) -> CliResult {
    let src = Endpoint::open_src(file)?;
    let sock = TcpStream::connect(addr).map_err(|e| format!("connect {addr}: {e}"))?;
    let dst = Endpoint::Tcp(sock);
    let result = drive(&src, &dst, &options(args, Method::Auto), quiet);
    if let Endpoint::Tcp(s) = &dst {
        // Tell the peer we are done before the close, so it sees EOF even if the close lingers.
        let _ = s.shutdown(std::net::Shutdown::Write);
    }
    finish("sent", result, quiet)
}

/// Listens on `addr`, accepts one connection and writes everything it sends into `file` (or
/// stdout) with splice unless another method is asked for.
pub fn recv(addr: &str, file: &Path, args: &TransferArgs, quiet: bool) -> CliResult {
    let listener = TcpListener::bind(addr).map_err(|e| format!("listen {addr}: {e}"))?;
    let local = listener
        .local_addr()
        .map_err(|e| format!("listen {addr}: {e}"))?;
    // Printed even with --quiet: with port 0 it is the only way to learn the port.
    eprintln!("zcopy: listening on {local}");
    let dst = Endpoint::open_dst(file, false, None)?;
    let (sock, peer) = listener
        .accept()
        .map_err(|e| format!("accept on {local}: {e}"))?;
    drop(listener);
    if !quiet {
        eprintln!("zcopy: connection from {peer}");
    }
    let src = Endpoint::Tcp(sock);
    finish(
        "received",
        drive(&src, &dst, &options(args, Method::Splice), quiet),
        quiet,
    )
}
