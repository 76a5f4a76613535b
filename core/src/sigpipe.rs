//! Keeps SIGPIPE from killing the host while the engine writes to a pipe or socket.
//!
//! `sendfile`, `splice` and `write` cannot take MSG_NOSIGNAL: writing into a closed peer raises
//! SIGPIPE, whose default action kills the process. Hosts like CPython and the JVM ignore it;
//! a C program may not. While a guard lives, SIGPIPE is blocked on the calling thread; on drop a
//! SIGPIPE that the engine itself raised (seen as EPIPE) is consumed and the mask restored, so
//! the caller gets EPIPE and its signal state is untouched.

use crate::sys;

/// Blocks SIGPIPE on this thread for its lifetime (no-op when the process ignores SIGPIPE).
pub struct SigpipeGuard {
    active: bool,
    was_blocked: bool,
    was_pending: bool,
    /// Set when a write returned EPIPE, so a pending SIGPIPE is ours to consume.
    pub saw_epipe: bool,
}

impl SigpipeGuard {
    /// Blocks SIGPIPE unless it is ignored process-wide.
    pub fn new() -> SigpipeGuard {
        let idle = SigpipeGuard {
            active: false,
            was_blocked: true,
            was_pending: true,
            saw_epipe: false,
        };
        if sys::sigpipe_ignored().unwrap_or(false) {
            return idle;
        }
        match sys::block_sigpipe() {
            Ok((was_blocked, was_pending)) => SigpipeGuard {
                active: true,
                was_blocked,
                was_pending,
                saw_epipe: false,
            },
            Err(_) => idle,
        }
    }
}

impl Drop for SigpipeGuard {
    fn drop(&mut self) {
        if !self.active {
            return;
        }
        // A SIGPIPE pending from before the call is the caller's; leave it.
        if self.saw_epipe && !self.was_pending {
            sys::consume_sigpipe();
        }
        if !self.was_blocked {
            sys::unblock_sigpipe();
        }
    }
}
