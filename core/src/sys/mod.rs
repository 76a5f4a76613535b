//! The only place in the engine with `unsafe` and raw libc or nix calls.
//!
//! Each wrapper issues exactly one syscall and passes its result through [`counted`] (nix
//! calls) or [`cvt`] (the few raw libc calls), which count it, so a [`crate::Report`] can say
//! how many syscalls a call issued, and return `io::Result`. EINTR is returned to the caller,
//! which decides whether to retry (see `wait.rs`).
//!
//! nix wraps most calls safely. What stays on raw libc, and why:
//! - `ioctl(FIONREAD)`, `ioctl(SIOCATMARK)`: nix only offers macros that generate `unsafe fn`s,
//!   no less unsafe than the call itself.
//! - `getsockopt`/`setsockopt` of a plain int: nix has typed options only, and none for
//!   SO_ZEROCOPY, SO_DOMAIN or SO_COOKIE.
//! - `pthread_atfork`, `sigpending`, `sigtimedwait`, and querying SIGPIPE's disposition
//!   (nix's `sigaction` always installs one): not in nix.
//! - `OwnedFd::from_raw_fd` after `fcntl(F_DUPFD_CLOEXEC)`: nix's `dup` has no close-on-exec.
//! - `cachestat(2)`: in neither nix nor libc's x86_64 tables (the number is 451 on every
//!   architecture).
//! - the sends and writes from a file mapping (`mem.rs`): a `&[u8]` over a shared mapping of a
//!   file that may shrink or be written would be unsound, so those pass raw pointers.
#![allow(unsafe_code)]

mod mem;
mod zc;

use std::cell::Cell;
use std::io::{self, IoSlice};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::time::Duration;

use nix::fcntl::{FcntlArg, OFlag, SpliceFFlags, fcntl};
use nix::poll::{PollFd, PollFlags, PollTimeout};
use nix::sys::memfd::MFdFlags;
use nix::sys::resource::{UsageWho, getrusage};
use nix::sys::sendfile::sendfile64;
use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use nix::sys::socket::{AddressFamily, MsgFlags, Shutdown, SockFlag, SockType};
use nix::sys::time::TimeVal;
use nix::unistd::Whence;

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

/// Counts one syscall made through nix and turns its errno into an `io::Error`.
fn counted<T>(r: nix::Result<T>) -> io::Result<T> {
    count();
    r.map_err(io::Error::from)
}

/// Turns a raw libc return value of -1 into `io::Error::last_os_error()`, counting the call.
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
    counted(nix::sys::stat::fstat(fd))
}

/// `fcntl(F_GETFL)`: the file status flags and access mode.
pub fn get_fl(fd: BorrowedFd<'_>) -> io::Result<i32> {
    counted(fcntl(fd, FcntlArg::F_GETFL))
}

/// `fcntl(F_SETFL)`.
pub fn set_fl(fd: BorrowedFd<'_>, flags: i32) -> io::Result<()> {
    counted(fcntl(fd, FcntlArg::F_SETFL(OFlag::from_bits_retain(flags)))).map(drop)
}

/// `fcntl(F_DUPFD_CLOEXEC)`: a new fd (the lowest free number) for the same open file
/// description. The engine works on such duplicates of a caller's numbers so that a concurrent
/// `close` of a number cannot redirect its reads or writes to a file that reused it.
pub fn dup(fd: RawFd) -> io::Result<OwnedFd> {
    // The number is only resolved by this one syscall (see `borrow_raw`).
    let new = counted(fcntl(borrow_raw(fd), FcntlArg::F_DUPFD_CLOEXEC(0)))?;
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
    let flags = MsgFlags::from_bits_retain(flags | libc::MSG_DONTWAIT);
    counted(nix::sys::socket::recv(
        fd.as_raw_fd(),
        &mut buf[..len],
        flags,
    ))
}

/// `send(2)` with `flags` | MSG_NOSIGNAL.
pub fn send(fd: BorrowedFd<'_>, buf: &[u8], flags: i32) -> io::Result<usize> {
    let len = buf.len().min(MAX_RW);
    let flags = MsgFlags::from_bits_retain(flags | libc::MSG_NOSIGNAL);
    counted(nix::sys::socket::send(fd.as_raw_fd(), &buf[..len], flags))
}

/// `sendmsg(2)` of several buffers in order, with `flags` | MSG_NOSIGNAL (one syscall for a
/// run of byte parts; MSG_MORE keeps a short run for the next send's segment).
pub fn send_vectored(fd: BorrowedFd<'_>, bufs: &[IoSlice<'_>], flags: i32) -> io::Result<usize> {
    let flags = MsgFlags::from_bits_retain(flags | libc::MSG_NOSIGNAL);
    let bufs = &bufs[..bufs.len().min(IOV_MAX)];
    counted(nix::sys::socket::sendmsg::<()>(
        fd.as_raw_fd(),
        bufs,
        &[],
        flags,
        None,
    ))
}

/// `writev(2)`: [`send_vectored`] for descriptors that are not sockets (pipes, files).
pub fn write_vectored(fd: BorrowedFd<'_>, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
    counted(nix::sys::uio::writev(fd, &bufs[..bufs.len().min(IOV_MAX)]))
}

/// The kernel's limit on buffers per vectored call (UIO_MAXIOV).
pub const IOV_MAX: usize = 1024;

/// `posix_fadvise(POSIX_FADV_DONTNEED)`: releases the clean cached pages of `[off, off + len)`
/// (pages still referenced, such as those a socket has not sent yet, stay).
pub fn drop_cached(fd: BorrowedFd<'_>, off: u64, len: u64) -> io::Result<()> {
    let (off, len) = (
        off.min(i64::MAX as u64) as i64,
        len.min(i64::MAX as u64) as i64,
    );
    counted(nix::fcntl::posix_fadvise(
        fd,
        off,
        len,
        nix::fcntl::PosixFadviseAdvice::POSIX_FADV_DONTNEED,
    ))
}

/// `cachestat(2)`'s number, the same on every architecture (Linux 6.5+).
const SYS_CACHESTAT: libc::c_long = 451;

/// `struct cachestat_range` of `<linux/mman.h>`.
#[repr(C)]
struct CachestatRange {
    off: u64,
    len: u64,
}

/// `struct cachestat` of `<linux/mman.h>`: page counts of a range.
#[repr(C)]
#[derive(Default)]
struct Cachestat {
    nr_cache: u64,
    nr_dirty: u64,
    nr_writeback: u64,
    nr_evicted: u64,
    nr_recently_evicted: u64,
}

/// How many pages of `fd`'s file in `[off, off + len)` are in the page cache now
/// (`cachestat(2)`; ENOSYS before Linux 6.5).
pub fn cached_pages(fd: BorrowedFd<'_>, off: u64, len: u64) -> io::Result<u64> {
    let range = CachestatRange { off, len };
    let mut stat = Cachestat::default();
    // SAFETY: both pointers are to live, properly laid-out structs for the call's duration;
    // the kernel reads `range` and writes `stat` only.
    cvt(unsafe {
        libc::syscall(
            SYS_CACHESTAT,
            fd.as_raw_fd(),
            &raw const range,
            &raw mut stat,
            0u32,
        )
    })?;
    Ok(stat.nr_cache)
}

/// Opens the file behind `fd` again, read-only with O_DIRECT (through `/proc/self/fd`): reads
/// that bypass the page cache, without changing the caller's descriptor. File systems without
/// O_DIRECT (procfs, sysfs; tmpfs before Linux 6.6) refuse with EINVAL.
pub fn reopen_direct(fd: BorrowedFd<'_>) -> io::Result<OwnedFd> {
    let path = format!("/proc/self/fd/{}", fd.as_raw_fd());
    counted(nix::fcntl::open(
        path.as_str(),
        OFlag::O_RDONLY | OFlag::O_DIRECT | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    ))
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
    let whence = match whence {
        libc::SEEK_SET => Whence::SeekSet,
        libc::SEEK_CUR => Whence::SeekCur,
        libc::SEEK_END => Whence::SeekEnd,
        _ => return Err(io::Error::from_raw_os_error(libc::EINVAL)),
    };
    counted(nix::unistd::lseek(fd, off, whence)).map(|p| p as u64)
}

/// `read(2)`, or `pread(2)` when `off` is given.
pub fn read(fd: BorrowedFd<'_>, buf: &mut [u8], off: Option<u64>) -> io::Result<usize> {
    let len = buf.len().min(MAX_RW);
    let buf = &mut buf[..len];
    counted(match off {
        Some(o) => nix::sys::uio::pread(fd, buf, o as i64),
        None => nix::unistd::read(fd, buf),
    })
}

/// `write(2)`, or `pwrite(2)` when `off` is given.
pub fn write(fd: BorrowedFd<'_>, buf: &[u8], off: Option<u64>) -> io::Result<usize> {
    let len = buf.len().min(MAX_RW);
    let buf = &buf[..len];
    counted(match off {
        Some(o) => nix::sys::uio::pwrite(fd, buf, o as i64),
        None => nix::unistd::write(fd, buf),
    })
}

/// `sendfile(2)`: `off` None uses and advances `src`'s file position.
pub fn sendfile(
    dst: BorrowedFd<'_>,
    src: BorrowedFd<'_>,
    off: Option<&mut u64>,
    len: usize,
) -> io::Result<usize> {
    let len = len.min(MAX_RW);
    with_offsets(off, None, |p, _| counted(sendfile64(dst, src, p, len)))
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
        counted(nix::fcntl::copy_file_range(src, pi, dst, po, len))
    })
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
    let flags = SpliceFFlags::from_bits_retain(flags);
    with_offsets(off_in, off_out, |pi, po| {
        counted(nix::fcntl::splice(src, pi, dst, po, len, flags))
    })
}

/// `tee(2)`: duplicates up to `len` bytes of the pipe `src` into the pipe `dst` without
/// consuming them.
pub fn tee(src: BorrowedFd<'_>, dst: BorrowedFd<'_>, len: usize, flags: u32) -> io::Result<usize> {
    let flags = SpliceFFlags::from_bits_retain(flags);
    counted(nix::fcntl::tee(src, dst, len.min(MAX_RW), flags))
}

/// Calls `f` with the kernel's signed `loff_t` form of two optional offsets (a local copy
/// for each) and stores back what the kernel advanced them to.
fn with_offsets<R>(
    a: Option<&mut u64>,
    b: Option<&mut u64>,
    f: impl FnOnce(Option<&mut i64>, Option<&mut i64>) -> io::Result<R>,
) -> io::Result<R> {
    let mut va = a.as_ref().map(|o| **o as i64);
    let mut vb = b.as_ref().map(|o| **o as i64);
    let r = f(va.as_mut(), vb.as_mut())?;
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
    counted(nix::unistd::pipe2(OFlag::O_CLOEXEC))
}

/// `fcntl(F_SETPIPE_SZ)`: returns the capacity actually set.
pub fn set_pipe_size(fd: BorrowedFd<'_>, size: i32) -> io::Result<usize> {
    counted(fcntl(fd, FcntlArg::F_SETPIPE_SZ(size))).map(|n| n as usize)
}

/// `fcntl(F_GETPIPE_SZ)`.
pub fn get_pipe_size(fd: BorrowedFd<'_>) -> io::Result<usize> {
    counted(fcntl(fd, FcntlArg::F_GETPIPE_SZ)).map(|n| n as usize)
}

/// `shutdown(SHUT_WR)`.
pub fn shutdown_write(fd: BorrowedFd<'_>) -> io::Result<()> {
    counted(nix::sys::socket::shutdown(fd.as_raw_fd(), Shutdown::Write))
}

/// Readiness wanted from / reported by [`poll`].
pub use libc::{POLLERR, POLLHUP, POLLIN, POLLOUT, POLLPRI};

/// `poll(2)` on up to four fds (no fds: a sleep). `timeout` None waits forever. Returns the
/// revents per fd.
pub fn poll(fds: &[(BorrowedFd<'_>, i16)], timeout: Option<Duration>) -> io::Result<[i16; 4]> {
    let timeout = match timeout {
        None => PollTimeout::NONE,
        // Round up so a 0.4 ms deadline does not become a busy 0 ms poll.
        Some(d) => PollTimeout::try_from(d.as_micros().div_ceil(1000)).unwrap_or(PollTimeout::MAX),
    };
    let mut out = [0i16; 4];
    let Some(&(first, _)) = fds.first() else {
        counted(nix::poll::poll(&mut [], timeout))?;
        return Ok(out);
    };
    let n = fds.len().min(4);
    // Slots past `n` repeat the first fd so that the array needs no placeholder descriptor;
    // only the first `n` are polled.
    let mut pfds: [PollFd<'_>; 4] = std::array::from_fn(|i| {
        let (fd, events) = fds.get(i).copied().unwrap_or((first, 0));
        PollFd::new(fd, PollFlags::from_bits_retain(events))
    });
    counted(nix::poll::poll(&mut pfds[..n], timeout))?;
    for (o, p) in out.iter_mut().zip(&pfds[..n]) {
        // Only flags nix knows are asked for, so the kernel reports no others; were it to,
        // POLLERR makes the caller retry its call and meet the real condition there.
        *o = p.revents().map_or(POLLERR, |r| r.bits());
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

fn sigpipe_set() -> SigSet {
    let mut set = SigSet::empty();
    set.add(Signal::SIGPIPE);
    set
}

/// Blocks SIGPIPE on the calling thread. Returns (was it blocked already, was it pending).
pub fn block_sigpipe() -> io::Result<(bool, bool)> {
    let old = counted(sigpipe_set().thread_swap_mask(SigmaskHow::SIG_BLOCK))?;
    let was_blocked = old.contains(Signal::SIGPIPE);
    let mut pend = std::mem::MaybeUninit::<libc::sigset_t>::zeroed();
    // SAFETY: pend is valid storage for sigpending (not in nix) to write.
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
    // SAFETY: valid set and timespec; a null siginfo is allowed. EAGAIN (none pending) is
    // fine. sigtimedwait is not in nix.
    let _ = cvt(unsafe { libc::sigtimedwait(set.as_ref(), std::ptr::null_mut(), &ts) });
}

/// Unblocks SIGPIPE on the calling thread.
pub fn unblock_sigpipe() {
    let _ = counted(sigpipe_set().thread_unblock());
}

/// `memfd_create(2)` (used by the capability probe; no file system needed).
pub fn memfd(name: &std::ffi::CStr) -> io::Result<OwnedFd> {
    counted(nix::sys::memfd::memfd_create(name, MFdFlags::MFD_CLOEXEC))
}

/// A TCP socket (IPv4, else IPv6) with SOCK_CLOEXEC, unconnected (used by the probe).
pub fn tcp_socket() -> io::Result<OwnedFd> {
    let tcp = |family| {
        counted(nix::sys::socket::socket(
            family,
            SockType::Stream,
            SockFlag::SOCK_CLOEXEC,
            None,
        ))
    };
    tcp(AddressFamily::Inet).or_else(|_| tcp(AddressFamily::Inet6))
}

/// `getrusage(RUSAGE_SELF)`: (user, system) CPU time of the whole process.
pub fn process_cpu_time() -> io::Result<(Duration, Duration)> {
    let ru = counted(getrusage(UsageWho::RUSAGE_SELF))?;
    let tv = |t: TimeVal| Duration::new(t.tv_sec() as u64, (t.tv_usec() as u32) * 1000);
    Ok((tv(ru.user_time()), tv(ru.system_time())))
}
