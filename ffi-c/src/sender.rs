//! `zcopy_sender`: streaming MSG_ZEROCOPY sends from caller memory.

use std::ffi::{c_int, c_void};

use zcopy_core::{ExternalBuffer, ZeroCopySender};

use crate::status::{Failure, catch, finish, timeout_from_ms};
use crate::types::{zcopy_sender_stats, zcopy_status};

/// A streaming `MSG_ZEROCOPY` sender on a TCP socket (opaque). Create with
/// `zcopy_sender_new`, release with `zcopy_sender_close` or `zcopy_sender_free`.
pub struct zcopy_sender {
    inner: ZeroCopySender,
}

fn new(sock_fd: c_int) -> Result<Box<zcopy_sender>, Failure> {
    let inner = ZeroCopySender::from_raw(sock_fd)?;
    Ok(Box::new(zcopy_sender { inner }))
}

fn send(s: &mut zcopy_sender, buf: ExternalBuffer) -> Result<u64, Failure> {
    Ok(s.inner.send_external(buf)?)
}

fn poll(s: &mut zcopy_sender, timeout_ms: i64) -> Result<(u64, u64), Failure> {
    let timeout = timeout_from_ms(timeout_ms)?;
    let done = s.inner.poll(timeout)?;
    Ok((done, s.inner.stats().copied))
}

fn stats(s: &zcopy_sender) -> zcopy_sender_stats {
    let st = s.inner.stats();
    zcopy_sender_stats {
        sent: st.sent,
        done: st.done,
        pending: st.pending,
        completions: st.completions,
        copied: st.copied,
    }
}

/// Creates a sender on the TCP socket `sock_fd` (IPv4 or IPv6) and turns `SO_ZEROCOPY` on.
///
/// `sock_fd` is borrowed: the sender keeps its own duplicate, closed by
/// `zcopy_sender_close` / `zcopy_sender_free`; the caller still closes `sock_fd`. On
/// `ZCOPY_STATUS_OK`, `*out` is a new sender the caller owns; on any other status `*out` is
/// not written.
///
/// Returns `ZCOPY_STATUS_NULL_PARAMETER` when `out` is NULL, `ZCOPY_STATUS_INVALID_ARGUMENT`
/// for a negative descriptor, `ZCOPY_STATUS_UNSUPPORTED` for a descriptor of the wrong kind
/// (a file, a pipe, a Unix or UDP socket), a socket that already made `MSG_ZEROCOPY` sends the
/// library does not know of, or a kernel without `MSG_ZEROCOPY`, `ZCOPY_STATUS_OS` (errno
/// set) when a system call fails.
///
/// Threading: any thread.
///
/// # Safety
/// `out` is NULL or points to writable memory for one pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn zcopy_sender_new(
    sock_fd: c_int,
    out: *mut *mut zcopy_sender,
) -> zcopy_status {
    finish(
        catch(|| {
            if out.is_null() {
                return Err(Failure::null());
            }
            let s = new(sock_fd)?;
            // SAFETY: non-NULL, and the caller promises it is valid for writing one pointer.
            unsafe { out.write(Box::into_raw(s)) };
            Ok(())
        })
        .and_then(|r| r),
    )
}

/// Sends the `len` bytes at `buf` with `MSG_ZEROCOPY`, waiting while the socket is full, and
/// writes the send's id to `*out_id`. Ids start at 0 and increase by one per call.
///
/// The kernel reads `buf` after this returns: the memory must stay valid and unchanged until
/// `zcopy_sender_poll` reports `*out_done` above the id (or `zcopy_sender_close` returns
/// `ZCOPY_STATUS_OK`). On a failed send part of `buf` may be in flight already: keep it until
/// `zcopy_sender_get_stats` reports `pending == 0` or `zcopy_sender_close` returns OK.
/// `*out_id` is written only on `ZCOPY_STATUS_OK`.
///
/// Returns `ZCOPY_STATUS_NULL_PARAMETER` when `s`, `buf` or `out_id` is NULL (even with `len`
/// 0), `ZCOPY_STATUS_OS` (errno set: EPIPE, ECONNRESET, ...) when the socket fails. A closed
/// peer never raises SIGPIPE.
///
/// Threading: one thread at a time per sender (it may move between threads).
///
/// # Safety
/// `s` is NULL or a live sender not used by another thread during the call; `buf` is NULL or
/// readable for `len` bytes until the send completes (see above); `out_id` is NULL or
/// writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn zcopy_sender_send(
    s: *mut zcopy_sender,
    buf: *const c_void,
    len: usize,
    out_id: *mut u64,
) -> zcopy_status {
    finish(
        catch(|| {
            // SAFETY: the caller promises `s` is NULL or a live sender used by this thread only.
            let Some(s) = (unsafe { s.as_mut() }) else {
                return Err(Failure::null());
            };
            if buf.is_null() || out_id.is_null() {
                return Err(Failure::null());
            }
            // SAFETY: non-NULL, and the caller promises `len` readable bytes at `buf` that stay
            // valid and unchanged until the kernel's completion for them, which is
            // ExternalBuffer's contract.
            let ext = unsafe { ExternalBuffer::new(buf.cast::<u8>(), len) };
            let id = send(s, ext)?;
            // SAFETY: non-NULL, and the caller promises it is writable.
            unsafe { out_id.write(id) };
            Ok(())
        })
        .and_then(|r| r),
    )
}

/// Reads completions, waiting up to `timeout_ms` for every pending send to complete: -1 waits
/// as long as it takes, 0 does not wait, > 0 waits up to that many milliseconds; < -1 is
/// `ZCOPY_STATUS_INVALID_ARGUMENT`. Returns `ZCOPY_STATUS_OK` also when the time ran out
/// first: compare `*out_done` with the number of sends.
///
/// On `ZCOPY_STATUS_OK` writes `*out_done` (every id below it has completed, so those buffers
/// may be reused or freed) and `*out_copied` (how many kernel sends so far the kernel copied
/// instead of sharing pages: all of them on loopback); on other statuses writes neither.
///
/// Threading: one thread at a time per sender.
///
/// # Safety
/// `s` is NULL or a live sender not used by another thread during the call; `out_done` and
/// `out_copied` are NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn zcopy_sender_poll(
    s: *mut zcopy_sender,
    timeout_ms: i64,
    out_done: *mut u64,
    out_copied: *mut u64,
) -> zcopy_status {
    finish(
        catch(|| {
            // SAFETY: the caller promises `s` is NULL or a live sender used by this thread only.
            let Some(s) = (unsafe { s.as_mut() }) else {
                return Err(Failure::null());
            };
            if out_done.is_null() || out_copied.is_null() {
                return Err(Failure::null());
            }
            let (done, copied) = poll(s, timeout_ms)?;
            // SAFETY: both non-NULL, and the caller promises they are writable.
            unsafe {
                out_done.write(done);
                out_copied.write(copied);
            }
            Ok(())
        })
        .and_then(|r| r),
    )
}

/// Writes the sender's counters to `*out` (only on `ZCOPY_STATUS_OK`). Does not wait and
/// does not read completions: call `zcopy_sender_poll` for that.
///
/// Returns `ZCOPY_STATUS_NULL_PARAMETER` when `s` or `out` is NULL.
///
/// Threading: one thread at a time per sender.
///
/// # Safety
/// `s` is NULL or a live sender not used by another thread during the call; `out` is NULL or
/// writable memory for one `zcopy_sender_stats`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn zcopy_sender_get_stats(
    s: *const zcopy_sender,
    out: *mut zcopy_sender_stats,
) -> zcopy_status {
    finish(
        catch(|| {
            // SAFETY: the caller promises `s` is NULL or a live sender.
            let Some(s) = (unsafe { s.as_ref() }) else {
                return Err(Failure::null());
            };
            if out.is_null() {
                return Err(Failure::null());
            }
            let st = stats(s);
            // SAFETY: non-NULL, and the caller promises it is writable.
            unsafe { out.write(st) };
            Ok(())
        })
        .and_then(|r| r),
    )
}

/// Waits up to `timeout_ms` (-1: as long as it takes, 0: not at all) for outstanding
/// completions, then frees the sender and closes its duplicate of the socket.
///
/// `ZCOPY_STATUS_OK`: every send completed, every buffer may be reused or freed.
/// `ZCOPY_STATUS_TIMED_OUT` (or `ZCOPY_STATUS_OS`, errno set): some completions did not
/// arrive; the kernel may still read those buffers, so the caller must not free or change
/// them (leaking them is the safe choice). The sender is freed on every status except
/// `ZCOPY_STATUS_NULL_PARAMETER` and `ZCOPY_STATUS_INVALID_ARGUMENT` (`timeout_ms < -1`),
/// which leave it untouched.
///
/// Threading: one thread at a time per sender.
///
/// # Safety
/// `s` is NULL or a live sender, not used by another thread and never used again after the
/// call (unless the status is NULL_PARAMETER or INVALID_ARGUMENT).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn zcopy_sender_close(s: *mut zcopy_sender, timeout_ms: i64) -> zcopy_status {
    finish(
        catch(|| {
            if s.is_null() {
                return Err(Failure::null());
            }
            let timeout = timeout_from_ms(timeout_ms)?;
            // SAFETY: non-NULL, made by Box::into_raw in zcopy_sender_new, and the caller
            // promises it is live and handed back to us for good.
            let s = unsafe { Box::from_raw(s) };
            s.inner.close(timeout)?;
            Ok(())
        })
        .and_then(|r| r),
    )
}

/// Frees the sender: waits up to 30 seconds for outstanding completions, then closes its
/// duplicate of the socket. Buffers whose completion did not arrive may still be read by the
/// kernel; prefer `zcopy_sender_close`, which says whether they all arrived. NULL does nothing.
///
/// Threading: one thread at a time per sender.
///
/// # Safety
/// `s` is NULL or a live sender, not used by another thread and never used again.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn zcopy_sender_free(s: *mut zcopy_sender) {
    if s.is_null() {
        return;
    }
    // SAFETY: non-NULL, made by Box::into_raw in zcopy_sender_new, and the caller promises it
    // is live and handed back to us for good.
    let s = unsafe { Box::from_raw(s) };
    // A panic while waiting must not cross the boundary; the sender is gone either way.
    let _ = catch(move || drop(s));
}
