//! `send(MSG_ZEROCOPY)` from a mapping of the source file to a TCP socket.
//!
//! The kernel pins the mapped pages it sends from (page references held by the socket buffers),
//! so unmapping them after `send` returns is safe: the pages live until the kernel lets go,
//! exactly like the page-cache pages `sendfile` queues. Each send's completion arrives later on
//! the socket's error queue.
//!
//! Nothing of the caller's outlives the call: no duplicate of the socket is kept. Before
//! returning, the call waits for the completions of its sends — within its deadline and
//! interruptible like any wait — so that the error queue is left empty (an event loop polling
//! the socket would otherwise see POLLERR). When the call ends first (timeout 0, a deadline, an
//! interrupt, an error), the report's `zc_pending` says how many notifications are still due:
//! the kernel queues them on the socket's error queue, where they make poll report POLLERR until
//! read with `recvmsg(MSG_ERRQUEUE)`; the next msg_zerocopy transfer on the socket reads them
//! first. When completions keep saying the kernel copied anyway (always on loopback, or a NIC
//! without scatter-gather), the rest goes out with plain sends from the mapping.

use crate::job::{Job, Side, Step, Stop};
use crate::method::Method;
use crate::report::Fallback;
use crate::sys;
use crate::zerocopy::{self, Tally};

use super::mmap;

/// Bytes per zerocopy send: large enough to amortise the page pinning and the completion.
const CHUNK: usize = 512 * 1024;
/// Completions seen, all copied, before switching to plain sends.
const COPIED_BEFORE_SWITCH: u64 = 4;

pub(crate) fn run(job: &mut Job<'_>) -> Step {
    zerocopy::enable(job.dst)?;
    let cookie = sys::socket_cookie(job.dst).map_err(|e| Stop::Fail(e.into()))?;
    // Notifications an earlier call left due on this socket arrive first: count them in.
    let mut tally = Tally::resume(cookie);
    let mut copying = false;
    let sent = send_all(job, &mut tally, &mut copying);
    // Finishing: wait for the completions (deadline and hook apply). Ending on an error or an
    // interrupt: take what has arrived and go (the interrupt was the caller's way out).
    let waited = match &sent {
        Ok(()) => tally.wait_all(job.dst, &mut job.waiter),
        Err(_) => tally.drain(job.dst).map(drop).map_err(Into::into),
    };
    job.report.zc_sends = tally.ours_completed();
    job.report.zc_copied = tally.ours_copied();
    job.report.zc_pending = tally.pending();
    tally.park();
    sent?;
    waited.map_err(Stop::Fail)
}

fn send_all(job: &mut Job<'_>, tally: &mut Tally, copying: &mut bool) -> Step {
    let mut size = job.si.size;
    while let Some(map) = mmap::next_mapping(job, &mut size)? {
        let mut at = 0;
        while at < map.len() {
            if !job.more()? {
                return Ok(());
            }
            let Some(n) = mmap::within_size(job, map.len() - at, &mut size)? else {
                return Ok(());
            };
            let zc = !*copying;
            // Zerocopy sends are CHUNK each (one completion per send); plain sends take what
            // the size check allows.
            let (flags, n) = if zc {
                (libc::MSG_DONTWAIT | libc::MSG_ZEROCOPY, n.min(CHUNK))
            } else {
                (libc::MSG_DONTWAIT, n)
            };
            match map.send_to(job.dst, at, n, flags) {
                Ok(k) => {
                    at += k;
                    if zc {
                        tally.issued(1);
                    }
                    job.delivered(k);
                    if zc {
                        tally.drain(job.dst).map_err(|e| Stop::Fail(e.into()))?;
                        *copying = switch_to_copies(job, tally);
                    }
                }
                Err(e) if e.raw_os_error() == Some(libc::EFAULT) => {
                    if mmap::shrunk(job, &mut size)? {
                        return Ok(());
                    }
                    break;
                }
                // Too much memory pinned by sends in flight: wait for a completion.
                Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) && tally.pending() > 0 => {
                    tally.wait_one(job.dst, &mut job.waiter)?;
                }
                Err(e) => job.handle(e, Side::Dst)?,
            }
        }
    }
    Ok(())
}

/// Whether to switch to plain sends: the kernel copied every completed zerocopy send of this
/// call so far (always the case on loopback). Records the switch in the report.
fn switch_to_copies(job: &mut Job<'_>, tally: &Tally) -> bool {
    let done = tally.ours_completed();
    if done < COPIED_BEFORE_SWITCH || tally.ours_copied() != done {
        return false;
    }
    job.report.fallbacks.push(Fallback {
        from: Method::MsgZerocopy,
        to: Method::Mmap,
        reason: format!(
            "the kernel copied all {done} completed zerocopy sends (loopback, or no \
             scatter-gather): plain sends from the mapping are cheaper"
        ),
        errno: None,
    });
    job.report.method = Method::Mmap;
    true
}
