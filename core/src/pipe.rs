//! A bounded pool of kernel pipes for splice.
//!
//! splice needs a pipe on one side; moving file -> socket or socket -> socket goes through an
//! internal pipe. Creating and growing one costs three syscalls, so idle pipes are kept for the
//! next call. Two rules keep one call's bytes out of another's:
//! - a pipe is reused only when the kernel says it is empty (FIONREAD), not on the engine's own
//!   count: bytes left by an error belong to a stream that has ended;
//! - the pool belongs to the process that filled it: a forked child inherits the descriptors,
//!   so two processes would share the kernel pipes. A child never takes a pipe its parent
//!   pooled; it closes its copies and starts its own pool.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};

use crate::sys;

/// At most this many idle pipes are kept; more are closed on release.
const POOL_MAX: usize = 16;
/// Pipes are grown to this size where the process is allowed past the system maximum: each
/// pipeful costs two splice calls, so 4 MiB makes file -> socket splice 1/64 of a 64 KiB
/// read/write loop's syscalls instead of exactly 1/16 with the default 1 MiB maximum.
const PRIVILEGED_CAPACITY: usize = 4 << 20;

/// A pipe owned by the engine, with its capacity and how many bytes it holds.
pub struct Pipe {
    read: OwnedFd,
    write: OwnedFd,
    capacity: usize,
    /// Bytes spliced in and not yet spliced out.
    pub held: usize,
}

impl Pipe {
    fn new() -> io::Result<Pipe> {
        let (read, write) = sys::pipe()?;
        let capacity = grow(write.as_fd());
        Ok(Pipe {
            read,
            write,
            capacity,
            held: 0,
        })
    }

    /// The read end.
    pub fn reader(&self) -> BorrowedFd<'_> {
        self.read.as_fd()
    }

    /// The write end.
    pub fn writer(&self) -> BorrowedFd<'_> {
        self.write.as_fd()
    }

    /// Bytes the pipe can hold.
    pub fn capacity(&self) -> usize {
        self.capacity
    }
}

/// Grows the pipe: to [`PRIVILEGED_CAPACITY`] where the process may exceed the system maximum
/// (CAP_SYS_RESOURCE), else to the system maximum (/proc/sys/fs/pipe-max-size), quietly keeping
/// the default when the kernel refuses (EPERM once the user's pipe quota is used up).
fn grow(fd: BorrowedFd<'_>) -> usize {
    let max = max_pipe_size();
    [PRIVILEGED_CAPACITY.max(max), max]
        .into_iter()
        .find_map(|size| sys::set_pipe_size(fd, size as i32).ok())
        .unwrap_or_else(|| sys::get_pipe_size(fd).unwrap_or(65536))
}

fn max_pipe_size() -> usize {
    static MAX: OnceLock<usize> = OnceLock::new();
    *MAX.get_or_init(|| {
        std::fs::read_to_string("/proc/sys/fs/pipe-max-size")
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(1 << 20)
    })
}

/// Idle pipes, and the process generation they belong to.
struct Pool {
    generation: u64,
    idle: Vec<Pipe>,
}

static POOL: Mutex<Pool> = Mutex::new(Pool {
    generation: 0,
    idle: Vec::new(),
});

/// Bumped in every child right after fork() (a `pthread_atfork` child handler, registered on
/// first use): a pool filled in another generation belongs to an ancestor process. This costs
/// no syscall per call, where `getpid()` would cost one (glibc no longer caches it).
static GENERATION: AtomicU64 = AtomicU64::new(0);

extern "C" fn forked_child() {
    // An atomic add is async-signal-safe: all a child handler may do after a threaded fork.
    GENERATION.fetch_add(1, Ordering::Relaxed);
}

/// Whether forks are detected; without that (the handler could not be registered) nothing is
/// pooled at all.
fn fork_aware() -> bool {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    *REGISTERED.get_or_init(|| sys::on_fork_in_child(forked_child))
}

/// The pool of this process: a pool inherited through fork() is emptied first (the child
/// closes its copies; the parent's pipes are untouched).
fn pool() -> std::sync::MutexGuard<'static, Pool> {
    let mut pool = POOL.lock().unwrap_or_else(|p| p.into_inner());
    let generation = GENERATION.load(Ordering::Relaxed);
    if pool.generation != generation {
        pool.idle.clear();
        pool.generation = generation;
    }
    pool
}

/// Idle pipes in this process's pool (each is two descriptors): for tests that count
/// descriptors.
#[doc(hidden)]
pub fn pooled() -> usize {
    pool().idle.len()
}

/// Takes an idle pipe from the pool, or makes one.
pub fn acquire() -> io::Result<Pipe> {
    let idle = pool().idle.pop();
    match idle {
        Some(p) => Ok(p),
        None => Pipe::new(),
    }
}

/// Returns a pipe to the pool if the kernel says it is empty and the pool has room; otherwise
/// closes it.
pub fn release(pipe: Pipe) {
    if pipe.held != 0 || sys::bytes_queued(pipe.reader()).map_or(true, |n| n != 0) {
        return;
    }
    let mut pool = pool();
    if pool.idle.len() < POOL_MAX && fork_aware() {
        pool.idle.push(pipe);
    }
}
