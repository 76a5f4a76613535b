//! `zcopy_relay`: two stream sockets spliced into each other.

use std::ffi::c_int;

use zcopy_core::{RelayOptions, RelayReport};

use crate::status::{Failure, catch, timeout_from_ms};
use crate::types::{zcopy_relay_report, zcopy_status};

fn report_of(r: &RelayReport, os_errno: i32) -> zcopy_relay_report {
    zcopy_relay_report {
        a_to_b: r.a_to_b,
        b_to_a: r.b_to_a,
        os_errno,
        buffered: i32::from(r.buffered),
    }
}

/// The safe body of the relay entry points.
fn relay(a: c_int, b: c_int, timeout_ms: i64) -> (zcopy_status, zcopy_relay_report) {
    let timeout = match timeout_from_ms(timeout_ms) {
        Ok(t) => t,
        Err(f) => return (f.status, zcopy_relay_report::EMPTY),
    };
    let opts = RelayOptions {
        timeout,
        ..RelayOptions::default()
    };
    match zcopy_core::relay_fds(a, b, &opts) {
        Ok(r) => (zcopy_status::Ok, report_of(&r, 0)),
        Err(e) => {
            let f = Failure::from(&e.error);
            (f.status, report_of(&e.report, f.errno))
        }
    }
}

/// # Safety
/// `report` is NULL or points to writable, aligned memory for one `zcopy_relay_report`.
unsafe fn write_report(report: *mut zcopy_relay_report, out: zcopy_relay_report) {
    if !report.is_null() {
        // SAFETY: non-NULL, and this function's contract makes it valid for writes; `write`
        // does not read the old value.
        unsafe { report.write(out) };
    }
}

/// Relays two connected stream sockets (TCP or Unix) into each other, in both directions,
/// until both directions have ended: end of file on one side becomes `shutdown(SHUT_WR)` on
/// the other (half-close), and the other direction keeps flowing. Waits as long as it takes.
///
/// Both descriptors are borrowed: never closed, and their file status flags (O_NONBLOCK, ...)
/// are the same after the call as before. `report` NULL means not wanted; otherwise it is
/// written on every status with the bytes delivered each way. A reset or closed peer is
/// `ZCOPY_STATUS_OS` with the errno in `report->os_errno`, never a SIGPIPE.
///
/// Returns `ZCOPY_STATUS_INVALID_ARGUMENT` for a negative descriptor and
/// `ZCOPY_STATUS_UNSUPPORTED` when a descriptor is not a stream socket.
///
/// Threading: any thread, many at once (on different sockets). Single-threaded inside:
/// one relay occupies its calling thread until both directions end.
///
/// # Safety
/// `report` is NULL or points to writable memory for one `zcopy_relay_report`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn zcopy_relay(
    a_fd: c_int,
    b_fd: c_int,
    report: *mut zcopy_relay_report,
) -> zcopy_status {
    let (status, out) =
        catch(|| relay(a_fd, b_fd, -1)).unwrap_or_else(|f| (f.status, zcopy_relay_report::EMPTY));
    // SAFETY: the caller promises `report` is NULL or valid for writes (this function's
    // contract, passed on).
    unsafe { write_report(report, out) };
    status
}

/// `zcopy_relay` with one deadline for the whole relay: -1 waits as long as it takes, > 0
/// returns `ZCOPY_STATUS_TIMED_OUT` once that many milliseconds have passed and the relay
/// would have to wait, 0 returns `ZCOPY_STATUS_WOULD_BLOCK` at the first wait (as
/// `zcopy_transfer` does); < -1 is `ZCOPY_STATUS_INVALID_ARGUMENT`. The report then has the
/// bytes delivered each way. A relay that ends on its deadline cannot be resumed: bytes read
/// from one side but not yet written to the other are gone, so close both sockets.
///
/// Ownership, outputs and threading as for `zcopy_relay`.
///
/// # Safety
/// `report` is NULL or points to writable memory for one `zcopy_relay_report`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn zcopy_relay_with_timeout(
    a_fd: c_int,
    b_fd: c_int,
    timeout_ms: i64,
    report: *mut zcopy_relay_report,
) -> zcopy_status {
    let (status, out) = catch(|| relay(a_fd, b_fd, timeout_ms))
        .unwrap_or_else(|f| (f.status, zcopy_relay_report::EMPTY));
    // SAFETY: the caller promises `report` is NULL or valid for writes (this function's
    // contract, passed on).
    unsafe { write_report(report, out) };
    status
}
