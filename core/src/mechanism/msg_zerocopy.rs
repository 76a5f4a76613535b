//! `send(MSG_ZEROCOPY)` from a mapping of the source file to a TCP socket.
//!
//! The kernel pins the mapped pages and reads them after `send` returns; each send's
//! completion arrives later on the socket's error queue. Mappings are therefore kept until every
//! completion for them has arrived — past the call's return when the deadline ends the wait
//! first (they are parked with a duplicate of the socket and finished by the next zerocopy
//! transfer on it). When completions keep saying the kernel copied anyway (always on loopback,
//! or a NIC without scatter-gather), the rest goes out with plain sends from the mapping.

use std::os::fd::{AsFd, OwnedFd};
use std::sync::Mutex;

use crate::method::Method;
use crate::report::Fallback;
use crate::sys::{self, Mapping};
use crate::transfer::{Job, Side, Step, Stop};
use crate::zerocopy::{self, Completions};

use super::mmap;

/// Bytes per zerocopy send: large enough to amortise the page pinning and the completion.
const CHUNK: usize = 512 * 1024;
/// Completions seen, all copied, before switching to plain sends.
const COPIED_BEFORE_SWITCH: u64 = 4;

/// Mappings whose completions were still due when their transfer returned.
struct Parked {
    key: (u64, u64),
    sock: OwnedFd,
    maps: Vec<Mapping>,
    completions: Completions,
    issued: u64,
}

static PARKED: Mutex<Vec<Parked>> = Mutex::new(Vec::new());

fn take_parked(key: (u64, u64)) -> Option<Parked> {
    let mut parked = PARKED.lock().unwrap_or_else(|p| p.into_inner());
    let i = parked.iter().position(|p| p.key == key)?;
    Some(parked.swap_remove(i))
}

/// Whether a transfer on this socket left completions outstanding (the sender waits for them).
pub(crate) fn wait_parked(key: (u64, u64), deadline: Option<std::time::Instant>) {
    if let Some(mut p) = take_parked(key) {
        let done = p
            .completions
            .wait_for(p.sock.as_fd(), p.issued, deadline)
            .unwrap_or(false);
        if !done {
            PARKED.lock().unwrap_or_else(|e| e.into_inner()).push(p);
        }
    }
}

pub(crate) fn run(job: &mut Job<'_>) -> Step {
    let key = job.di.dev_ino;
    zerocopy::enable(job.dst)?;
    // Finish what an earlier transfer on this socket left in flight: its ids precede ours.
    let (mut completions, mut issued, mut maps) = match take_parked(key) {
        Some(p) => (p.completions, p.issued, p.maps),
        None => (
            Completions::new(zerocopy::next_kernel_id(key)),
            0,
            Vec::new(),
        ),
    };
    let base_completed = completions.completed;
    let base_copied = completions.copied;
    let mut copying = false;
    let r = send_all(job, &mut completions, &mut issued, &mut maps, &mut copying);
    // Every mapping stays alive until the kernel says it is done with it.
    let all_done = completions
        .wait_for(job.dst, issued, job.deadline)
        .unwrap_or_default();
    job.report.zc_sends = completions.completed - base_completed;
    job.report.zc_copied = completions.copied - base_copied;
    if !all_done {
        match sys::dup_above(std::os::fd::AsRawFd::as_raw_fd(&job.dst), 0) {
            Ok(sock) => PARKED
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(Parked {
                    key,
                    sock,
                    maps,
                    completions,
                    issued,
                }),
            // Without a descriptor to wait on, never unmap what the kernel may still read.
            Err(_) => std::mem::forget(maps),
        }
    }
    r
}

fn send_all(
    job: &mut Job<'_>,
    completions: &mut Completions,
    issued: &mut u64,
    maps: &mut Vec<Mapping>,
    copying: &mut bool,
) -> Step {
    let mut size = job.si.size;
    while let Some(map) = mmap::next_mapping(job, &mut size)? {
        // Owned by `maps` before the first send: no early return can unmap pages in flight.
        maps.push(map);
        let map = maps.last().expect("just pushed");
        let mut at = 0;
        while at < map.len() {
            let flags = if *copying { 0 } else { libc::MSG_ZEROCOPY };
            let asked = CHUNK.min(map.len() - at);
            match map.send_to(job.dst, at, asked, flags) {
                Ok(n) => {
                    at += n;
                    if !*copying {
                        *issued += 1;
                        zerocopy::advance_kernel_id(job.di.dev_ino, 1);
                    }
                    job.delivered_of(n, asked)?;
                    if !*copying {
                        completions
                            .drain(job.dst)
                            .map_err(|e| Stop::Fail(e.into()))?;
                        *copying = switch_to_copies(job, completions);
                    }
                }
                Err(e) if e.raw_os_error() == Some(libc::EFAULT) => return mmap::truncated(job),
                // Too much memory pinned by sends in flight: wait for some completions.
                Err(e)
                    if e.raw_os_error() == Some(libc::ENOBUFS)
                        && *issued > completions.watermark() =>
                {
                    let upto = completions.watermark() + 1;
                    completions
                        .wait_for(job.dst, upto, job.deadline)
                        .map_err(Stop::Fail)?;
                    if completions.watermark() < upto {
                        job.time_left()?;
                    }
                }
                Err(e) => job.handle(e, Side::Dst)?,
            }
        }
    }
    Ok(())
}

/// Whether to switch to plain sends: the kernel copied every completed zerocopy send so far
/// (always the case on loopback). Records the switch in the report.
fn switch_to_copies(job: &mut Job<'_>, completions: &Completions) -> bool {
    if completions.completed < COPIED_BEFORE_SWITCH || completions.copied != completions.completed {
        return false;
    }
    job.report.fallbacks.push(Fallback {
        from: Method::MsgZerocopy,
        to: Method::Mmap,
        reason: format!(
            "the kernel copied all {} completed zerocopy sends (loopback, or no \
             scatter-gather): plain sends from the mapping are cheaper",
            completions.completed
        ),
        errno: None,
    });
    job.report.method = Method::Mmap;
    true
}
