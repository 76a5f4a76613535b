//! Options of a transfer.

use std::sync::Arc;
use std::time::Duration;

use crate::method::Method;

/// Called when a syscall or wait is interrupted by a signal (EINTR). Returning `true` stops the
/// transfer with an `Os(EINTR)` error carrying the progress, so a host language can raise its
/// own exception (Python's KeyboardInterrupt); `false` retries.
pub type InterruptHook = Arc<dyn Fn() -> bool + Send + Sync>;

/// What a transfer does to the page cache of a regular-file source. Files larger than memory,
/// streamed once, otherwise evict everything else a server keeps cached.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Cache {
    /// Leave it to the kernel: the pages read stay cached.
    #[default]
    Keep,
    /// Release the source's pages behind the transfer (`POSIX_FADV_DONTNEED` on ranges already
    /// delivered), a few MiB behind the current position so that pages a socket still holds are
    /// not in the way. Pages that were cached before the call are released too.
    DropBehind,
    /// Read the source with O_DIRECT into aligned buffers and send from them (nginx's
    /// `directio`), plus drop-behind for pages that were cached. To a socket, an 8 MiB range
    /// already wholly in the page cache is sent from there with sendfile rather than read
    /// again from the disk (`cachestat(2)`, Linux 6.5+; the method reported stays
    /// read_write): a hot file costs what DropBehind costs, a cold one never enters the
    /// cache. Only Auto and read_write can read that way; a file system without O_DIRECT
    /// (procfs, sysfs; tmpfs before Linux 6.6) falls back to DropBehind, and the report's
    /// fallbacks say so.
    Direct,
}

impl Cache {
    /// The stable name ("keep", "drop_behind", "direct").
    pub fn name(self) -> &'static str {
        match self {
            Cache::Keep => "keep",
            Cache::DropBehind => "drop_behind",
            Cache::Direct => "direct",
        }
    }

    /// The policy for a name, if it is one.
    pub fn from_name(name: &str) -> Option<Cache> {
        [Cache::Keep, Cache::DropBehind, Cache::Direct]
            .into_iter()
            .find(|c| c.name() == name)
    }
}

/// How to transfer. `Options::default()` is Auto, from the source's position, to EOF, waiting.
#[derive(Clone, Default)]
pub struct Options {
    /// Which method; Auto picks and falls back.
    pub method: Method,
    /// `Some(off)`: read from `off`, the source's file position is unchanged.
    /// `None`: use and advance the source's file position.
    pub offset: Option<u64>,
    /// `Some(off)`: write at `off` of the destination (a regular file or block device), whose
    /// file position is unchanged (like `pwrite`; Java's `transferFrom`). `None`: write at the
    /// destination's position, which advances.
    pub dst_offset: Option<u64>,
    /// `Some(n)`: at most `n` bytes. `None`: until the source's EOF.
    pub count: Option<u64>,
    /// One deadline for the whole call. `None`: wait as long as it takes (poll, never spin);
    /// `Some(ZERO)`: return WouldBlock at the first wait; `Some(d)`: TimedOut after `d`.
    pub timeout: Option<Duration>,
    /// Whether an explicit method may fall back to the next one in the chain.
    pub fallback: bool,
    /// Called on EINTR; see [`InterruptHook`].
    pub on_interrupt: Option<InterruptHook>,
    /// The host ignores or handles SIGPIPE itself (CPython and the JVM do), so the engine can
    /// skip blocking it around writes to pipes and sockets (one syscall less per call). Leave
    /// it false unless that is guaranteed: with SIGPIPE at its default, a write into a closed
    /// peer would kill the process.
    pub host_ignores_sigpipe: bool,
    /// What to do with the source's page cache; see [`Cache`].
    pub cache: Cache,
}

impl std::fmt::Debug for Options {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Options")
            .field("method", &self.method)
            .field("offset", &self.offset)
            .field("dst_offset", &self.dst_offset)
            .field("count", &self.count)
            .field("timeout", &self.timeout)
            .field("fallback", &self.fallback)
            .field("on_interrupt", &self.on_interrupt.is_some())
            .field("host_ignores_sigpipe", &self.host_ignores_sigpipe)
            .field("cache", &self.cache)
            .finish()
    }
}

impl Options {
    /// Defaults with this method.
    pub fn with_method(method: Method) -> Options {
        Options {
            method,
            ..Options::default()
        }
    }
}

/// How to relay. `RelayOptions::default()` waits as long as both directions are open.
#[derive(Clone, Default)]
pub struct RelayOptions {
    /// One deadline for the whole relay; `None` waits for both directions to end.
    pub timeout: Option<Duration>,
    /// Called on EINTR; see [`InterruptHook`].
    pub on_interrupt: Option<InterruptHook>,
}

impl std::fmt::Debug for RelayOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RelayOptions")
            .field("timeout", &self.timeout)
            .field("on_interrupt", &self.on_interrupt.is_some())
            .finish()
    }
}
