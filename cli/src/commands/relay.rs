//! `zcopy relay LISTEN UPSTREAM`: a TCP proxy, one engine `relay` (splice, both directions,
//! half-close forwarded) on its own thread per connection.

use std::net::{TcpListener, TcpStream};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use zcopy_core::{RelayOptions, relay};

use super::CliResult;
use crate::units::fmt_rate;

/// Accepts on `listen` and relays each connection to `upstream`; with `max_conns`, stops
/// accepting after that many and returns when they have all ended.
pub fn run(listen: &str, upstream: &str, max_conns: Option<u64>, quiet: bool) -> CliResult {
    let listener = TcpListener::bind(listen).map_err(|e| format!("listen {listen}: {e}"))?;
    let local = listener
        .local_addr()
        .map_err(|e| format!("listen {listen}: {e}"))?;
    eprintln!("zcopy: listening on {local}, relaying to {upstream}");
    let mut workers: Vec<JoinHandle<()>> = Vec::new();
    let mut accepted = 0u64;
    while max_conns.is_none_or(|m| accepted < m) {
        let (client, peer) = match listener.accept() {
            Ok(c) => c,
            // A connection reset before accept, a signal, or out of fds for a moment: keep
            // serving, without spinning on an error that persists.
            Err(e) => {
                eprintln!("zcopy: accept on {local}: {e}");
                thread::sleep(Duration::from_millis(100));
                continue;
            }
        };
        accepted += 1;
        let upstream = upstream.to_owned();
        let spawned = thread::Builder::new()
            .name(format!("relay {peer}"))
            .spawn(move || serve(client, &peer.to_string(), &upstream, quiet));
        match spawned {
            Ok(h) => workers.push(h),
            Err(e) => eprintln!("zcopy: {peer}: cannot start a thread: {e}"),
        }
        workers.retain(|h| !h.is_finished());
    }
    for h in workers {
        // A worker only logs; a panic in one is reported by the runtime and not ours to redo.
        let _ = h.join();
    }
    Ok(())
}

fn serve(client: TcpStream, peer: &str, upstream: &str, quiet: bool) {
    let up = match TcpStream::connect(upstream) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("zcopy: {peer}: connect {upstream}: {e}");
            return;
        }
    };
    let t0 = Instant::now();
    match relay(&client, &up, &RelayOptions::default()) {
        Ok(r) if !quiet => {
            let total = r.a_to_b + r.b_to_a;
            eprintln!(
                "zcopy: {peer} <-> {upstream}: {} bytes up, {} bytes down in {:.3} s ({}), {} syscalls{}",
                r.a_to_b,
                r.b_to_a,
                t0.elapsed().as_secs_f64(),
                fmt_rate(total, t0.elapsed()),
                r.syscalls,
                if r.buffered {
                    " (pipes scarce: recv/send through a buffer)"
                } else {
                    ""
                }
            );
        }
        Ok(_) => {}
        Err(e) => eprintln!("zcopy: {peer} <-> {upstream}: {e}"),
    }
}
