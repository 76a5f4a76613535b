//! The only place in the engine with `unsafe` and raw libc calls.
//!
//! Each wrapper issues exactly one syscall through [`cvt`] (which also counts it, so a
//! [`crate::Report`] can say how many syscalls a call issued) and returns `io::Result`.
//! EINTR is returned to the caller, which decides whether to retry (see `transfer.rs`).
#![allow(unsafe_code)]

mod mem;
mod zc;

use std::cell::Cell;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::time::Duration;

pub use mem::Mapping;
pub use zc::{ExternalBuffer, ZcCompletion, recv_zc_completions, send_zerocopy};

thread_local! {
    static SYSCALLS: Cell<u64> = const { Cell::new(0) };
}

/// Syscalls issued by this thread so far (a monotonic counter; callers take differences).
pub fn syscalls() -> u64 {
    SYSCALLS.with(|c| c.get())
}

fn count() {
    SYSCALLS.with(|c| c.set(c.get() + 1));
}

/// Turns a libc return value of -1 into `io::Error::last_os_error()`, counting the call.
fn cvt<T: Copy + PartialEq + From<i8>>(ret: T) -> io::Result<T> {
    count();
    if ret == T::from(-1) {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// The kernel's per-call cap for sendfile, copy_file_range and read/write (MAX_RW_COUNT).
pub const MAX_RW: usize = 0x7fff_f000;

/// `fstat(2)`.
pub fn fstat(fd: BorrowedFd<'_>) -> io::Result<libc::stat> {
    let mut st = std::mem::MaybeUninit::<libc::stat>::zeroed();
    // SAFETY: `st` is a valid out-pointer of the right type; fstat writes it fully on success.
    cvt(unsafe { libc::fstat(fd.as_raw_fd(), st.as_mut_ptr()) })?;
    // SAFETY: fstat succeeded, so the struct is initialised (it was zeroed before anyway).
    Ok(unsafe { st.assume_init() })
}

/// `fcntl(F_GETFL)`: the file status flags and access mode.
pub fn get_fl(fd: BorrowedFd<'_>) -> io::Result<i32> {
    // SAFETY: F_GETFL takes no pointer argument.
    cvt(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFL) })
}

/// `fcntl(F_SETFL)`.
pub fn set_fl(fd: BorrowedFd<'_>, flags: i32) -> io::Result<()> {
    // SAFETY: F_SETFL takes an int argument.
    cvt(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFL, flags) }).map(drop)
}

/// `fcntl(F_DUPFD_CLOEXEC)`: a new fd (the lowest free number) for the same open file
/// description. The engine works on such duplicates of a caller's numbers so that a concurrent
/// `close` of a number cannot redirect its reads or writes to a file that reused it.
pub fn dup(fd: RawFd) -> io::Result<OwnedFd> {
    // SAFETY: F_DUPFD_CLOEXEC only reads the fd number; an invalid one fails with EBADF.
    let new = cvt(unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 0) })?;
    // SAFETY: `new` is a fresh fd that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(new) })
}

/// `ioctl(FIONREAD)`: bytes waiting to be read (a pipe's content, a socket's receive queue).
pub fn bytes_queued(fd: BorrowedFd<'_>) -> io::Result<usize> {
    let mut n: libc::c_int = 0;
    // SAFETY: FIONREAD writes one int to the pointer given.
    cvt(unsafe { libc::ioctl(fd.as_raw_fd(), libc::FIONREAD, &mut n) })?;
    Ok(n.max(0) as usize)
}

/// linux/sockios.h and asm-generic/socket.h (not exported by libc for this target).
const SIOCATMARK: libc::c_ulong = 0x8905;
const SO_COOKIE: libc::c_int = 57;

/// `ioctl(SIOCATMARK)`: whether a TCP socket's next byte is its urgent (MSG_OOB) mark, where
/// splice stops for good (it cannot skip the urgent byte; `recv` can).
pub fn at_urgent_mark(fd: BorrowedFd<'_>) -> io::Result<bool> {
    let mut n: libc::c_int = 0;
    // SAFETY: SIOCATMARK writes one int to the pointer given.
    cvt(unsafe { libc::ioctl(fd.as_raw_fd(), SIOCATMARK, &mut n) })?;
    Ok(n != 0)
}

/// `recv(2)` with `flags` | MSG_DONTWAIT (never blocks).
pub fn recv(fd: BorrowedFd<'_>, buf: &mut [u8], flags: i32) -> io::Result<usize> {
    let len = buf.len().min(MAX_RW);
    // SAFETY: buf is valid for writes of `len` bytes (MSG_TRUNC discards without writing).
    let n = cvt(unsafe {
        libc::recv(
            fd.as_raw_fd(),
            buf.as_mut_ptr().cast(),
            len,
            flags | libc::MSG_DONTWAIT,
        )
    })?;
    Ok(n as usize)
}

/// `send(2)` with `flags` | MSG_NOSIGNAL.
pub fn send(fd: BorrowedFd<'_>, buf: &[u8], flags: i32) -> io::Result<usize> {
    let len = buf.len().min(MAX_RW);
    // SAFETY: buf is valid for reads of `len` bytes.
    let n = cvt(unsafe {
        libc::send(
            fd.as_raw_fd(),
            buf.as_ptr().cast(),
            len,
            flags | libc::MSG_NOSIGNAL,
        )
    })?;
    Ok(n as usize)
}

/// `pthread_atfork(3)` with only a child handler: `f` runs in every child right after fork().
/// Returns whether it was registered (it fails only with ENOMEM).
pub fn on_fork_in_child(f: extern "C" fn()) -> bool {
    // SAFETY: `f` is a plain function that lives for the whole program; no prepare or parent
    // handler.
    unsafe { libc::pthread_atfork(None, None, Some(f)) == 0 }
}

/// `getsockopt(SO_COOKIE)`: a number unique to this socket for the life of the system
/// (inode numbers are reused after close; cookies are not).
pub fn socket_cookie(fd: BorrowedFd<'_>) -> io::Result<u64> {
    let mut val: u64 = 0;
    let mut len = std::mem::size_of::<u64>() as libc::socklen_t;
    // SAFETY: val/len point to valid storage of the sizes given.
    cvt(unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            SO_COOKIE,
            (&raw mut val).cast(),
            &mut len,
        )
    })?;
    Ok(val)
}

/// Borrows a raw descriptor number for a single syscall.
///
/// `BorrowedFd` promises the number stays open for the borrow; a number closed meanwhile only
/// makes the syscall fail with EBADF (the kernel resolves it once per call), so this is only
/// used for one syscall at a time, by the fast path, before the general path pins the files.
pub fn borrow_raw(fd: RawFd) -> BorrowedFd<'static> {
    // SAFETY: fd >= 0 is checked by the caller; see above for why a stale number is harmless
    // for the single syscall it is used for.
    unsafe { BorrowedFd::borrow_raw(fd) }
}

/// `getsockopt(2)` for an int option.
pub fn getsockopt_int(fd: BorrowedFd<'_>, level: i32, name: i32) -> io::Result<i32> {
    let mut val: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: val/len point to valid storage of the sizes given.
    cvt(unsafe { libc::getsockopt(fd.as_raw_fd(), level, name, (&raw mut val).cast(), &mut len) })?;
    Ok(val)
}

/// `setsockopt(2)` for an int option.
pub fn setsockopt_int(fd: BorrowedFd<'_>, level: i32, name: i32, val: i32) -> io::Result<()> {
    // SAFETY: the pointer and length describe `val`, an int that outlives the call.
    cvt(unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (&raw const val).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    })
    .map(drop)
}

/// `lseek(2)`.
pub fn lseek(fd: BorrowedFd<'_>, off: i64, whence: i32) -> io::Result<u64> {
    // SAFETY: no pointers.
    cvt(unsafe { libc::lseek(fd.as_raw_fd(), off, whence) }).map(|p| p as u64)
}

/// `read(2)`, or `pread(2)` when `off` is given.
pub fn read(fd: BorrowedFd<'_>, buf: &mut [u8], off: Option<u64>) -> io::Result<usize> {
    let len = buf.len().min(MAX_RW);
    // SAFETY: buf is valid for writes of `len` bytes.
    let n = cvt(unsafe {
        match off {
            Some(o) => libc::pread(fd.as_raw_fd(), buf.as_mut_ptr().cast(), len, o as i64),
            None => libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), len),
        }
    })?;
    Ok(n as usize)
}

/// `write(2)`, or `pwrite(2)` when `off` is given.
pub fn write(fd: BorrowedFd<'_>, buf: &[u8], off: Option<u64>) -> io::Result<usize> {
    let len = buf.len().min(MAX_RW);
    // SAFETY: buf is valid for reads of `len` bytes.
    let n = cvt(unsafe {
        match off {
            Some(o) => libc::pwrite(fd.as_raw_fd(), buf.as_ptr().cast(), len, o as i64),
            None => libc::write(fd.as_raw_fd(), buf.as_ptr().cast(), len),
        }
    })?;
    Ok(n as usize)
}

/// `sendfile(2)`: `off` None uses and advances `src`'s file position.
pub fn sendfile(
    dst: BorrowedFd<'_>,
    src: BorrowedFd<'_>,
    off: Option<&mut u64>,
    len: usize,
) -> io::Result<usize> {
    let len = len.min(MAX_RW);
    with_offsets(off, None, |p, _| {
        // SAFETY: p is null or points to a live loff_t (see `with_offsets`).
        cvt(unsafe { libc::sendfile(dst.as_raw_fd(), src.as_raw_fd(), p, len) })
    })
    .map(|n| n as usize)
}

/// `copy_file_range(2)`: a `None` offset uses and advances that file's position.
pub fn copy_file_range(
    src: BorrowedFd<'_>,
    off_in: Option<&mut u64>,
    dst: BorrowedFd<'_>,
    off_out: Option<&mut u64>,
    len: usize,
) -> io::Result<usize> {
    let len = len.min(MAX_RW);
    with_offsets(off_in, off_out, |pi, po| {
        // SAFETY: pi/po are null or point to live loff_t values (see `with_offsets`).
        cvt(unsafe { libc::copy_file_range(src.as_raw_fd(), pi, dst.as_raw_fd(), po, len, 0) })
    })
    .map(|n| n as usize)
}

/// `splice(2)` from `src` to `dst`; a `None` offset uses (and for files advances) that side's
/// position. Pipes take no offset.
pub fn splice(
    src: BorrowedFd<'_>,
    off_in: Option<&mut u64>,
    dst: BorrowedFd<'_>,
    off_out: Option<&mut u64>,
    len: usize,
    flags: u32,
) -> io::Result<usize> {
    let len = len.min(MAX_RW);
    with_offsets(off_in, off_out, |pi, po| {
        // SAFETY: pi/po are null or point to live loff_t values (see `with_offsets`).
        cvt(unsafe { libc::splice(src.as_raw_fd(), pi, dst.as_raw_fd(), po, len, flags) })
    })
    .map(|n| n as usize)
}

/// `tee(2)`: duplicates up to `len` bytes of the pipe `src` into the pipe `dst` without
/// consuming them.
pub fn tee(src: BorrowedFd<'_>, dst: BorrowedFd<'_>, len: usize, flags: u32) -> io::Result<usize> {
    // SAFETY: no pointers; both descriptors are borrowed for the call.
    let n = cvt(unsafe { libc::tee(src.as_raw_fd(), dst.as_raw_fd(), len.min(MAX_RW), flags) })?;
    Ok(n as usize)
}

/// Calls `f` with `loff_t *` arguments for two optional offsets (null for `None`, else a
/// pointer to a local copy that lives through the call) and stores back what the kernel
/// advanced them to.
fn with_offsets<R>(
    a: Option<&mut u64>,
    b: Option<&mut u64>,
    f: impl FnOnce(*mut libc::loff_t, *mut libc::loff_t) -> io::Result<R>,
) -> io::Result<R> {
    let mut va = a.as_ref().map(|o| **o as libc::loff_t);
    let mut vb = b.as_ref().map(|o| **o as libc::loff_t);
    let ptr =
        |v: &mut Option<libc::loff_t>| v.as_mut().map_or(std::ptr::null_mut(), |x| x as *mut _);
    let r = f(ptr(&mut va), ptr(&mut vb))?;
    for (dst, v) in [(a, va), (b, vb)] {
        if let (Some(d), Some(v)) = (dst, v) {
            *d = v as u64;
        }
    }
    Ok(r)
}

/// Flags for [`splice`].
pub use libc::{SPLICE_F_MORE, SPLICE_F_MOVE, SPLICE_F_NONBLOCK};

/// `pipe2(O_CLOEXEC)`: (read end, write end).
pub fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: fds has room for the two ints pipe2 writes.
    cvt(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) })?;
    // SAFETY: both fds are fresh and owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// `fcntl(F_SETPIPE_SZ)`: returns the capacity actually set.
pub fn set_pipe_size(fd: BorrowedFd<'_>, size: i32) -> io::Result<usize> {
    // SAFETY: F_SETPIPE_SZ takes an int argument.
    cvt(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETPIPE_SZ, size) }).map(|n| n as usize)
}

/// `fcntl(F_GETPIPE_SZ)`.
pub fn get_pipe_size(fd: BorrowedFd<'_>) -> io::Result<usize> {
    // SAFETY: no pointer argument.
    cvt(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETPIPE_SZ) }).map(|n| n as usize)
}

/// `shutdown(SHUT_WR)`.
pub fn shutdown_write(fd: BorrowedFd<'_>) -> io::Result<()> {
    // SAFETY: no pointers.
    cvt(unsafe { libc::shutdown(fd.as_raw_fd(), libc::SHUT_WR) }).map(drop)
}

/// Readiness wanted from / reported by [`poll`].
pub use libc::{POLLERR, POLLHUP, POLLIN, POLLOUT, POLLPRI};

/// `poll(2)` on up to a few fds. `timeout` None waits forever. Returns the revents per fd.
pub fn poll(fds: &[(BorrowedFd<'_>, i16)], timeout: Option<Duration>) -> io::Result<[i16; 4]> {
    let mut pfds = [libc::pollfd {
        fd: -1,
        events: 0,
        revents: 0,
    }; 4];
    let n = fds.len().min(4);
    for (slot, (fd, ev)) in pfds.iter_mut().zip(fds) {
        slot.fd = fd.as_raw_fd();
        slot.events = *ev;
    }
    let ms: libc::c_int = match timeout {
        None => -1,
        // Round up so a 0.4 ms deadline does not become a busy 0 ms poll.
        Some(d) => d.as_micros().div_ceil(1000).min(i32::MAX as u128) as libc::c_int,
    };
    // SAFETY: pfds holds `n` initialised pollfd structs.
    cvt(unsafe { libc::poll(pfds.as_mut_ptr(), n as libc::nfds_t, ms) })?;
    let mut out = [0i16; 4];
    for (o, p) in out.iter_mut().zip(&pfds) {
        *o = p.revents;
    }
    Ok(out)
}

/// Whether SIGPIPE's disposition is "ignore" for the process.
pub fn sigpipe_ignored() -> io::Result<bool> {
    let mut old = std::mem::MaybeUninit::<libc::sigaction>::zeroed();
    // SAFETY: a null new action only queries; `old` is a valid out-pointer.
    cvt(unsafe { libc::sigaction(libc::SIGPIPE, std::ptr::null(), old.as_mut_ptr()) })?;
    // SAFETY: sigaction succeeded and wrote `old` (which was zeroed anyway).
    let old = unsafe { old.assume_init() };
    Ok(old.sa_sigaction == libc::SIG_IGN)
}

fn sigpipe_set() -> libc::sigset_t {
    let mut set = std::mem::MaybeUninit::<libc::sigset_t>::zeroed();
    // SAFETY: set is valid storage for a sigset_t; sigemptyset/sigaddset only write it.
    unsafe {
        libc::sigemptyset(set.as_mut_ptr());
        libc::sigaddset(set.as_mut_ptr(), libc::SIGPIPE);
        set.assume_init()
    }
}

/// Blocks SIGPIPE on the calling thread. Returns (was it blocked already, was it pending).
pub fn block_sigpipe() -> io::Result<(bool, bool)> {
    let set = sigpipe_set();
    let mut old = std::mem::MaybeUninit::<libc::sigset_t>::zeroed();
    // SAFETY: both pointers are valid sigset_t storage.
    let rc = unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, old.as_mut_ptr()) };
    count();
    if rc != 0 {
        return Err(io::Error::from_raw_os_error(rc));
    }
    // SAFETY: pthread_sigmask succeeded and wrote `old`.
    let old = unsafe { old.assume_init() };
    // SAFETY: `old` is an initialised sigset_t.
    let was_blocked = unsafe { libc::sigismember(&old, libc::SIGPIPE) } == 1;
    let mut pend = std::mem::MaybeUninit::<libc::sigset_t>::zeroed();
    // SAFETY: pend is valid storage for sigpending to write.
    cvt(unsafe { libc::sigpending(pend.as_mut_ptr()) })?;
    // SAFETY: sigpending succeeded and wrote `pend`.
    let was_pending = unsafe { libc::sigismember(pend.as_ptr(), libc::SIGPIPE) } == 1;
    Ok((was_blocked, was_pending))
}

/// Consumes a pending SIGPIPE of this thread (or process), if there is one, without waiting.
pub fn consume_sigpipe() {
    let set = sigpipe_set();
    let ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: valid set and timespec; a null siginfo is allowed. EAGAIN (none pending) is fine.
    let _ = cvt(unsafe { libc::sigtimedwait(&set, std::ptr::null_mut(), &ts) });
}

/// Unblocks SIGPIPE on the calling thread.
pub fn unblock_sigpipe() {
    let set = sigpipe_set();
    // SAFETY: valid set; a null old-set pointer is allowed.
    unsafe { libc::pthread_sigmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut()) };
    count();
}

/// `memfd_create(2)` (used by the capability probe; no file system needed).
pub fn memfd(name: &std::ffi::CStr) -> io::Result<OwnedFd> {
    // SAFETY: name is a valid NUL-terminated string.
    let fd = cvt(unsafe { libc::memfd_create(name.as_ptr(), libc::MFD_CLOEXEC) })?;
    // SAFETY: fresh fd owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `socket(2)` with SOCK_CLOEXEC.
pub fn socket(domain: i32, ty: i32) -> io::Result<OwnedFd> {
    // SAFETY: no pointers.
    let fd = cvt(unsafe { libc::socket(domain, ty | libc::SOCK_CLOEXEC, 0) })?;
    // SAFETY: fresh fd owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `getrusage(RUSAGE_SELF)`: (user, system) CPU time of the whole process.
pub fn process_cpu_time() -> io::Result<(Duration, Duration)> {
    let mut ru = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: ru is valid storage for getrusage to write.
    cvt(unsafe { libc::getrusage(libc::RUSAGE_SELF, ru.as_mut_ptr()) })?;
    // SAFETY: getrusage succeeded and wrote `ru`.
    let ru = unsafe { ru.assume_init() };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, (t.tv_usec as u32) * 1000);
    Ok((tv(ru.ru_utime), tv(ru.ru_stime)))
}
