//! zcopy-core: move bytes between file descriptors with the cheapest correct kernel path.
//!
//! [`transfer`] picks among `copy_file_range`, `sendfile`, `splice`, `mmap` + `write`,
//! `MSG_ZEROCOPY` and plain `read`/`write` for the pair of descriptors it is given, falls back at
//! run time without losing or duplicating a byte, and returns a [`Report`] of what it did.
//! [`relay`] splices two stream sockets into each other until both directions end.
//! [`send_parts`] sends a whole response (bytes and file ranges, in order) in one call.
//! [`ZeroCopySender`] streams caller buffers with `MSG_ZEROCOPY`, holding each until the
//! kernel's completion.
//!
//! Descriptors are borrowed for one call. Every `unsafe` block of the crate lives in `sys`.
//!
//! Pages, not bytes, are shared: after `sendfile`, `splice` or `MSG_ZEROCOPY` return, later
//! writes to the source file may still reach the peer, because the kernel holds references to
//! the page cache, not a copy. Do not modify a file region until the peer has it.
#![deny(unsafe_code)]

mod cache;
mod caps;
mod check;
mod error;
mod fast;
pub mod fd;
mod job;
mod mechanism;
mod method;
mod options;
mod parts;
mod pipe;
mod plan;
mod relay;
mod report;
mod sigpipe;
mod sys;
mod transfer;
mod wait;
mod zerocopy;

pub use caps::{Capabilities, capabilities};
pub use error::{Error, ErrorCode, ErrorKind, Result};
pub use fd::{FdInfo, FdKind, classify};
pub use method::Method;
pub use options::{Cache, InterruptHook, Options, RelayOptions};
pub use parts::{Part, PartsOptions, RawPart, send_parts, send_parts_fds};
#[doc(hidden)]
pub use pipe::{
    budget as pipe_budget, held_capacity as pipe_capacity_held, pooled as pooled_pipes,
};
pub use relay::{RelayError, relay, relay_fds};
pub use report::{Fallback, RelayReport, Report};
pub use sys::ExternalBuffer;
pub use transfer::{transfer, transfer_fds};
pub use zerocopy::{SenderStats, ZeroCopySender, zerocopy_sockets_remembered};

/// The crate version ("0.1.0"): bindings compare it with their own to refuse a mismatched
/// native library.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Syscalls issued by the calling thread so far: a monotonic counter for benchmarks, which
/// take the difference around the code they measure.
pub fn thread_syscalls() -> u64 {
    sys::syscalls()
}

/// CPU time (user, system) of the whole process so far, from `getrusage(RUSAGE_SELF)`.
pub fn process_cpu_time() -> std::io::Result<(std::time::Duration, std::time::Duration)> {
    sys::process_cpu_time()
}
