//! What a call did: bytes, method, syscalls, fallbacks, MSG_ZEROCOPY completions.

use crate::method::Method;

/// One method given up on during a call, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fallback {
    /// The method given up on.
    pub from: Method,
    /// The method tried next.
    pub to: Method,
    /// Why: the errno that triggered it, or a short reason.
    pub reason: String,
    /// The errno behind it, if one.
    pub errno: Option<i32>,
}

/// The outcome of a transfer, on success and (inside [`crate::Error`]) on failure.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Report {
    /// Bytes that reached the destination.
    pub bytes: u64,
    /// The method that moved the last bytes (the requested one when nothing moved).
    pub method: Method,
    /// Every syscall the call issued, classification and bookkeeping included.
    pub syscalls: u64,
    /// Each method given up on, in order.
    pub fallbacks: Vec<Fallback>,
    /// MSG_ZEROCOPY sends whose completion arrived.
    pub zc_sends: u64,
    /// ... and how many of those the kernel copied anyway (always all of them on loopback).
    pub zc_copied: u64,
    /// MSG_ZEROCOPY sends whose completion had not arrived when the call returned (it ended
    /// early: timeout 0, a deadline, an interrupt, an error). Their notifications arrive later
    /// on the socket's error queue (poll reports POLLERR until they are read with
    /// `recvmsg(MSG_ERRQUEUE)`; the next msg_zerocopy transfer on the socket reads them).
    pub zc_pending: u64,
    /// Bytes taken from a pipe or socket source that could not be delivered (non-zero only
    /// inside an error: the source cannot take them back).
    pub undelivered: u64,
}

/// Bytes moved each way by [`crate::relay()`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RelayReport {
    /// Bytes delivered from `a` to `b`.
    pub a_to_b: u64,
    /// Bytes delivered from `b` to `a`.
    pub b_to_a: u64,
    /// Every syscall the relay issued.
    pub syscalls: u64,
    /// The pipe budget had no useful pipe for a direction (the pipes in use hold it all): it moved its
    /// bytes with recv/send through a 64 KiB buffer instead of splice.
    pub buffered: bool,
}
