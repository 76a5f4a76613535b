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
//!
//! Pipes are a budgeted resource. Past the per-user quota (`/proc/sys/fs/pipe-user-pages-soft`,
//! 64 MiB by default) the kernel silently hands an unprivileged process pipes of two pages,
//! through which splice crawls. The engine keeps the capacity of all its pipes within a budget
//! (half that quota, leaving the rest to the user's other pipes; 256 MiB of pinned memory for
//! a process with CAP_SYS_RESOURCE, which the quota does not bind), sizes each new pipe to what
//! is left (full size while there is plenty, smaller as it runs out, never below 64 KiB), and
//! when no useful pipe fits says so ([`is_scarce`]): transfers then fall back to a method that
//! needs none (sendfile for a file source, read/write otherwise), and the report says why.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};

use crate::sys;

/// At most this many idle pipes are kept; more are closed on release.
const POOL_MAX: usize = 16;
/// Pipes are grown to this size where the process is allowed past the system maximum: each
/// pipeful costs two splice calls, so 4 MiB makes file -> socket splice 1/64 of a 64 KiB
/// read/write loop's syscalls instead of exactly 1/16 with the default 1 MiB maximum.
const PRIVILEGED_CAPACITY: usize = 4 << 20;
/// The smallest pipe worth splicing through: the kernel's default size (16 pages). Smaller
/// ones (what the kernel hands out past the user's quota) make splice cost more syscalls than
/// a read/write loop.
const MIN_USEFUL: usize = 64 << 10;
/// The engine's pipe budget where the per-user quota does not bind: memory its pipes may pin.
const PRIVILEGED_BUDGET: usize = 256 << 20;

/// Capacity of every pipe the engine holds now, pooled or in use.
static HELD: AtomicUsize = AtomicUsize::new(0);
/// Pipes of the engine alive now, pooled or in use.
static LIVE: AtomicUsize = AtomicUsize::new(0);

/// Why no pipe was made: the budget (or the user's quota) has no room for a useful one.
#[derive(Debug)]
struct Scarce {
    held: usize,
    budget: usize,
}

impl std::fmt::Display for Scarce {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "no pipe of at least {} KiB fits: the engine holds {} KiB of pipes of its {} KiB \
             budget (half of /proc/sys/fs/pipe-user-pages-soft), or the user's pipe quota is \
             used up",
            MIN_USEFUL >> 10,
            self.held >> 10,
            self.budget >> 10
        )
    }
}

impl std::error::Error for Scarce {}

/// Whether an [`acquire`] error means pipes are scarce (not a failing syscall): callers fall
/// back to a method that needs no pipe.
pub fn is_scarce(e: &io::Error) -> bool {
    e.get_ref().is_some_and(|inner| inner.is::<Scarce>())
}

fn scarce(budget: usize) -> io::Error {
    io::Error::new(
        io::ErrorKind::OutOfMemory,
        Scarce {
            held: HELD.load(Ordering::Relaxed),
            budget,
        },
    )
}

/// The capacity of pipes the engine allows itself (see the module docs).
pub fn budget() -> usize {
    static BUDGET: OnceLock<usize> = OnceLock::new();
    *BUDGET.get_or_init(|| {
        let soft_pages = std::fs::read_to_string("/proc/sys/fs/pipe-user-pages-soft")
            .ok()
            .and_then(|s| s.trim().parse::<usize>().ok())
            .unwrap_or(0);
        if soft_pages == 0 || unbound_by_quota() {
            PRIVILEGED_BUDGET
        } else {
            soft_pages * 4096 / 2
        }
    })
}

const CAP_SYS_ADMIN: u32 = 21;
const CAP_SYS_RESOURCE: u32 = 24;

/// The process's effective capabilities (CapEff in /proc/self/status), read once.
fn capabilities() -> u64 {
    static EFF: OnceLock<u64> = OnceLock::new();
    *EFF.get_or_init(|| {
        std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|status| {
                status
                    .lines()
                    .find_map(|l| l.strip_prefix("CapEff:"))
                    .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
            })
            .unwrap_or(0)
    })
}

/// Whether the kernel's per-user pipe quota does not apply (CAP_SYS_RESOURCE or CAP_SYS_ADMIN).
fn unbound_by_quota() -> bool {
    capabilities() & (1 << CAP_SYS_ADMIN | 1 << CAP_SYS_RESOURCE) != 0
}

/// Whether pipes may grow past /proc/sys/fs/pipe-max-size (CAP_SYS_RESOURCE only: a container
/// root often has CAP_SYS_ADMIN without it).
fn may_exceed_max_size() -> bool {
    capabilities() & (1 << CAP_SYS_RESOURCE) != 0
}

/// The size of the next pipe: full while the budget has plenty of room, then an eighth of what
/// is left, so the last pipes still get a useful size; `None` when not even [`MIN_USEFUL`]
/// fits. The size is reserved in [`HELD`] (the caller gives back what it does not use).
fn reserve(full: usize) -> Option<usize> {
    let budget = budget();
    let mut held = HELD.load(Ordering::Relaxed);
    loop {
        let room = budget.saturating_sub(held);
        let size = if room >= 8 * full {
            full
        } else {
            prev_power_of_two(room / 8)
        };
        if size < MIN_USEFUL {
            return None;
        }
        match HELD.compare_exchange_weak(held, held + size, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => return Some(size),
            Err(now) => held = now,
        }
    }
}

fn prev_power_of_two(n: usize) -> usize {
    if n == 0 {
        0
    } else {
        1 << (usize::BITS - 1 - n.leading_zeros())
    }
}

/// A pipe owned by the engine, with its capacity and how many bytes it holds.
pub struct Pipe {
    read: OwnedFd,
    write: OwnedFd,
    capacity: usize,
    /// Bytes spliced in and not yet spliced out.
    pub held: usize,
}

impl Pipe {
    /// A pipe of at most `max` bytes sized within the budget, or a [`Scarce`] error.
    fn new(max: usize) -> io::Result<Pipe> {
        let full = prev_power_of_two(full_size().min(max)).max(MIN_USEFUL);
        let Some(reserved) = reserve(full) else {
            return Err(scarce(budget()));
        };
        let made = sys::pipe().map(|(read, write)| {
            let capacity = grow(write.as_fd(), reserved);
            (read, write, capacity)
        });
        let (read, write, capacity) = match made {
            Ok(m) => m,
            Err(e) => {
                HELD.fetch_sub(reserved, Ordering::Relaxed);
                return Err(e);
            }
        };
        // Keep the reservation equal to what the pipe really holds.
        HELD.fetch_sub(reserved, Ordering::Relaxed);
        HELD.fetch_add(capacity, Ordering::Relaxed);
        LIVE.fetch_add(1, Ordering::Relaxed);
        let pipe = Pipe {
            read,
            write,
            capacity,
            held: 0,
        };
        // The kernel shrank it (the user's quota is used up by other pipes): not worth using.
        if capacity < MIN_USEFUL {
            return Err(scarce(budget()));
        }
        Ok(pipe)
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

impl Drop for Pipe {
    fn drop(&mut self) {
        // Saturating: a forked child starts counting from zero (see `pool`).
        let cap = self.capacity;
        let _ = HELD.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |h| {
            Some(h.saturating_sub(cap))
        });
        let _ = LIVE.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
            Some(n.saturating_sub(1))
        });
    }
}

/// The size a pipe gets when the budget has room: [`PRIVILEGED_CAPACITY`] where the process
/// may exceed the system maximum, else the system maximum (/proc/sys/fs/pipe-max-size).
fn full_size() -> usize {
    if may_exceed_max_size() {
        PRIVILEGED_CAPACITY.max(max_pipe_size())
    } else {
        max_pipe_size()
    }
}

/// Sets the pipe's size to `size`, or to the system maximum if that is smaller and `size` is
/// refused, quietly keeping what it has when the kernel refuses both (EPERM once the user's
/// pipe quota is used up); returns the capacity it ends up with.
fn grow(fd: BorrowedFd<'_>, size: usize) -> usize {
    sys::set_pipe_size(fd, size as i32)
        .or_else(|_| sys::set_pipe_size(fd, size.min(max_pipe_size()) as i32))
        .or_else(|_| sys::get_pipe_size(fd))
        .unwrap_or(0)
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
        // The count was the parent's: none of its pipes are this process's to use.
        HELD.store(0, Ordering::Relaxed);
        LIVE.store(0, Ordering::Relaxed);
    }
    pool
}

/// Idle pipes in this process's pool (each is two descriptors): for tests that count
/// descriptors.
#[doc(hidden)]
pub fn pooled() -> usize {
    pool().idle.len()
}

/// Takes an idle pipe from the pool, or makes one as large as the budget allows.
pub fn acquire() -> io::Result<Pipe> {
    acquire_at_most(usize::MAX)
}

/// [`acquire`] for a long-lived user that needs no large pipe (a relay: socket buffers, not
/// the pipe, bound its throughput): a new pipe is at most `max` bytes, so thousands fit the
/// budget.
pub fn acquire_at_most(max: usize) -> io::Result<Pipe> {
    let (idle, in_use) = {
        let mut pool = pool();
        let idle = pool.idle.pop();
        (
            idle,
            LIVE.load(Ordering::Relaxed).saturating_sub(pool.idle.len()),
        )
    };
    match idle {
        Some(p) => Ok(p),
        // A new pipe's share shrinks with the pipes in use: one transfer gets a full-size pipe,
        // a thousand concurrent ones get the floor (where large pipes measured slower than
        // sendfile: more memory touched for the same bytes).
        None => Pipe::new(max.min(budget() / (8 * (in_use + 1)))),
    }
}

/// Returns a pipe to the pool if the kernel says it is empty, the pool has room and pipes are
/// not scarce (idle pipes would hold budget another call needs); otherwise closes it.
pub fn release(pipe: Pipe) {
    if pipe.held != 0 || sys::bytes_queued(pipe.reader()).map_or(true, |n| n != 0) {
        return;
    }
    let crowded = HELD.load(Ordering::Relaxed) > budget() / 2;
    let mut pool = pool();
    if pool.idle.len() < POOL_MAX && !crowded && fork_aware() {
        pool.idle.push(pipe);
    }
}

/// Capacity of the pipes the engine holds now (pooled and in use), for tests and benchmarks.
#[doc(hidden)]
pub fn held_capacity() -> usize {
    HELD.load(Ordering::Relaxed)
}
