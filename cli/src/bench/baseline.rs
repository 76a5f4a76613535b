//! Engine-free code for the benchmark: the read/write baseline with a 64 KiB buffer, the plain
//! `sendfile(2)` loop the engine is compared with, a response as users write it (`write` of
//! the header, then that loop), the splice drainers that play the receiving side, and the
//! socket's segment counter. Written directly against libc so no engine code is on these
//! paths; each helper counts the syscalls it issues.

use std::fs::File;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};

/// The buffer of the read/write baseline.
pub const RW_BUF: usize = 64 << 10;
/// The kernel's per-call cap for sendfile (MAX_RW_COUNT).
const MAX_RW: u64 = 0x7fff_f000;
/// Drainer pipes are grown to this (the usual `/proc/sys/fs/pipe-max-size`).
pub const DRAIN_PIPE: usize = 1 << 20;

/// Turns a libc return value into `io::Result`, counting one syscall.
fn cvt(ret: isize, syscalls: &mut u64) -> io::Result<usize> {
    *syscalls += 1;
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret as usize)
    }
}

fn retry_eintr(r: &io::Result<usize>) -> bool {
    matches!(r, Err(e) if e.kind() == io::ErrorKind::Interrupted)
}

/// `pread(2)` into `buf`.
fn pread(fd: BorrowedFd<'_>, buf: &mut [u8], off: u64, syscalls: &mut u64) -> io::Result<usize> {
    loop {
        // SAFETY: `buf` is valid for writes of `buf.len()` bytes for the duration of the call.
        let ret = unsafe {
            libc::pread(
                fd.as_raw_fd(),
                buf.as_mut_ptr().cast(),
                buf.len(),
                off as libc::off_t,
            )
        };
        let r = cvt(ret, syscalls);
        if !retry_eintr(&r) {
            return r;
        }
    }
}

/// `read(2)` into `buf`.
fn read(fd: BorrowedFd<'_>, buf: &mut [u8], syscalls: &mut u64) -> io::Result<usize> {
    loop {
        // SAFETY: `buf` is valid for writes of `buf.len()` bytes for the duration of the call.
        let ret = unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        let r = cvt(ret, syscalls);
        if !retry_eintr(&r) {
            return r;
        }
    }
}

/// `write(2)` of all of `buf`, looping over short writes.
fn write_all(fd: BorrowedFd<'_>, mut buf: &[u8], syscalls: &mut u64) -> io::Result<()> {
    while !buf.is_empty() {
        // SAFETY: `buf` is valid for reads of `buf.len()` bytes for the duration of the call.
        let ret = unsafe { libc::write(fd.as_raw_fd(), buf.as_ptr().cast(), buf.len()) };
        match cvt(ret, syscalls) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => buf = &buf[n..],
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// The read/write baseline from a file: `pread` 64 KiB from `off`, `write` it, until `len`
/// bytes or EOF. Returns the bytes written.
pub fn pread_write(
    src: BorrowedFd<'_>,
    off: u64,
    len: u64,
    dst: BorrowedFd<'_>,
    buf: &mut [u8],
    sys: &mut u64,
) -> io::Result<u64> {
    let mut done = 0u64;
    while done < len {
        let want = (len - done).min(buf.len() as u64) as usize;
        let n = pread(src, &mut buf[..want], off + done, sys)?;
        if n == 0 {
            break;
        }
        write_all(dst, &buf[..n], sys)?;
        done += n as u64;
    }
    Ok(done)
}

/// The read/write baseline from a stream (a socket proxy): `read` 64 KiB, `write` it, until EOF.
pub fn read_write_stream(
    src: BorrowedFd<'_>,
    dst: BorrowedFd<'_>,
    buf: &mut [u8],
    sys: &mut u64,
) -> io::Result<u64> {
    let mut done = 0u64;
    loop {
        let n = read(src, buf, sys)?;
        if n == 0 {
            return Ok(done);
        }
        write_all(dst, &buf[..n], sys)?;
        done += n as u64;
    }
}

/// The reference: a plain `sendfile(2)` loop from `off`, `len` bytes or to EOF, into a blocking
/// socket. This is what a hand-written server does, and what the engine's sendfile path must
/// match.
pub fn sendfile_loop(
    dst: BorrowedFd<'_>,
    src: BorrowedFd<'_>,
    off: u64,
    len: u64,
    sys: &mut u64,
) -> io::Result<u64> {
    let mut pos = off as libc::off_t;
    let mut done = 0u64;
    while done < len {
        let want = (len - done).min(MAX_RW) as usize;
        // SAFETY: `pos` is a valid off_t the kernel reads and advances; the fds are borrowed
        // and open for the duration of the call.
        let ret = unsafe { libc::sendfile(dst.as_raw_fd(), src.as_raw_fd(), &mut pos, want) };
        match cvt(ret, sys) {
            Ok(0) => break,
            Ok(n) => done += n as u64,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}

/// A response as a hand-written server sends it: `write(2)` of `header` (looping over short
/// writes), then the plain `sendfile(2)` loop for `len` bytes of `src` from `off`. Returns the
/// bytes sent, header included.
pub fn write_then_sendfile(
    dst: BorrowedFd<'_>,
    header: &[u8],
    src: BorrowedFd<'_>,
    off: u64,
    len: u64,
    sys: &mut u64,
) -> io::Result<u64> {
    write_all(dst, header, sys)?;
    Ok(header.len() as u64 + sendfile_loop(dst, src, off, len, sys)?)
}

/// TCP segments the socket has sent so far: `tcpi_segs_out` of `TCP_INFO` (tcp(7); Linux
/// 4.2+, which every kernel the engine supports is). It counts every segment, retransmissions
/// and pure ACKs included; a sender whose peer sends nothing emits no pure ACKs.
pub fn segs_out(sock: BorrowedFd<'_>) -> io::Result<u32> {
    let mut info = std::mem::MaybeUninit::<libc::tcp_info>::zeroed();
    let mut len = std::mem::size_of::<libc::tcp_info>() as libc::socklen_t;
    // SAFETY: `info` and `len` describe writable storage of `len` bytes for the kernel to fill.
    let ret = unsafe {
        libc::getsockopt(
            sock.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            info.as_mut_ptr().cast(),
            &mut len,
        )
    };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    let end = std::mem::offset_of!(libc::tcp_info, tcpi_segs_out) + std::mem::size_of::<u32>();
    if (len as usize) < end {
        return Err(io::Error::other(format!(
            "TCP_INFO returned {len} bytes, too few for tcpi_segs_out"
        )));
    }
    // SAFETY: the struct was zeroed (a valid tcp_info: plain integers) and the kernel wrote a
    // prefix of it, which covers tcpi_segs_out (checked above).
    Ok(unsafe { info.assume_init() }.tcpi_segs_out)
}

/// `splice(2)` without offsets, retrying EINTR.
fn splice(
    src: BorrowedFd<'_>,
    dst: BorrowedFd<'_>,
    len: usize,
    sys: &mut u64,
) -> io::Result<usize> {
    loop {
        // SAFETY: null offsets mean "use the fds' own positions"; the fds are borrowed and open.
        let ret = unsafe {
            libc::splice(
                src.as_raw_fd(),
                std::ptr::null_mut(),
                dst.as_raw_fd(),
                std::ptr::null_mut(),
                len,
                libc::SPLICE_F_MOVE,
            )
        };
        let r = cvt(ret, sys);
        if !retry_eintr(&r) {
            return r;
        }
    }
}

/// Grows a pipe to `size` bytes, keeping the default if the kernel refuses.
pub fn grow_pipe(fd: BorrowedFd<'_>, size: usize) {
    // SAFETY: F_SETPIPE_SZ takes an int argument and no pointer.
    let _ = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETPIPE_SZ, size as libc::c_int) };
}

/// Sets TCP_QUICKACK, so the receiver acknowledges at once instead of delaying ACKs (the
/// kernel clears it again on its own, so the drainer re-arms it as it goes).
pub fn quickack(sock: BorrowedFd<'_>) {
    let one: libc::c_int = 1;
    // SAFETY: the option value points to a live c_int of the size given.
    let _ = unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_QUICKACK,
            (&raw const one).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
}

fn dev_null() -> io::Result<File> {
    File::options().write(true).open("/dev/null")
}

/// Drains a pipe's read end into /dev/null with splice until EOF; returns the bytes drained.
pub fn drain_pipe(src: BorrowedFd<'_>) -> io::Result<u64> {
    let null = dev_null()?;
    let mut sys = 0;
    let mut total = 0u64;
    loop {
        let n = splice(src, null.as_fd(), DRAIN_PIPE, &mut sys)?;
        if n == 0 {
            return Ok(total);
        }
        total += n as u64;
    }
}

/// Drains a socket into /dev/null with splice through a private pipe until EOF, re-arming
/// TCP_QUICKACK after each read; returns the bytes drained.
pub fn drain_socket(sock: BorrowedFd<'_>) -> io::Result<u64> {
    let null = dev_null()?;
    let (r, w) = io::pipe()?;
    grow_pipe(w.as_fd(), DRAIN_PIPE);
    let mut sys = 0;
    let mut total = 0u64;
    quickack(sock);
    loop {
        let n = splice(sock, w.as_fd(), DRAIN_PIPE, &mut sys)?;
        if n == 0 {
            return Ok(total);
        }
        quickack(sock);
        let mut left = n;
        while left > 0 {
            match splice(r.as_fd(), null.as_fd(), left, &mut sys)? {
                0 => return Err(io::ErrorKind::UnexpectedEof.into()),
                k => left -= k,
            }
        }
        total += n as u64;
    }
}

/// Reads until EOF and throws the bytes away (the feeder of the relay scenario waits for the
/// relay to close its side this way).
pub fn read_to_eof(fd: BorrowedFd<'_>) -> io::Result<u64> {
    let mut buf = [0u8; 4096];
    let mut sys = 0;
    let mut total = 0u64;
    loop {
        match read(fd, &mut buf, &mut sys)? {
            0 => return Ok(total),
            n => total += n as u64,
        }
    }
}
