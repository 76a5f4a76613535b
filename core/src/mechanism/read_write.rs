//! The baseline: `read` (or `pread`) into a buffer, `write` it out; with the Direct cache
//! policy, O_DIRECT reads of a regular-file source into an aligned buffer.

use std::os::fd::{AsFd, BorrowedFd};

use crate::cache::{self, ALIGN, AlignedBuf};
use crate::fd::FdKind;
use crate::job::{Job, Side, Step, Stop};
use crate::method::Method;
use crate::options::Cache;
use crate::pipe::{self, Pipe};
use crate::report::Fallback;
use crate::sys;

/// Buffer size: large enough that syscall overhead is small, small enough to stay in L2.
const BUF: usize = 128 * 1024;

/// Bytes per O_DIRECT read (a multiple of [`ALIGN`]).
const DIRECT_BUF: usize = 1 << 20;

/// Bytes per check (and sendfile) of a cached range under Direct: large enough that the check
/// and the call cost little per byte, small enough that a partly cached file soon finds its
/// cold ranges.
const CACHED_CHUNK: usize = 8 << 20;

pub(crate) fn run(job: &mut Job<'_>) -> Step {
    job.explicit_pos()?;
    if job.cache == Cache::Direct && job.si.kind == FdKind::Regular {
        match cache::open_direct(job.src) {
            Ok(direct) => match copy_direct(job, direct.as_fd()) {
                Err(Stop::Fallback { errno, reason }) => buffered_instead(job, errno, &reason),
                done => return done,
            },
            Err(e) => buffered_instead(job, e.raw_os_error(), &e.to_string()),
        }
    }
    // A socket or pipe source in a call that may return early (deadline, zero timeout) is
    // peeked (MSG_PEEK, or tee for a pipe), and only what was written is then consumed:
    // nothing taken is ever left undelivered.
    let mut peek = match job.si.kind {
        FdKind::Stream(_) if job.waiter.bounded() => Peek::Socket,
        FdKind::Pipe if job.waiter.bounded() => {
            Peek::Pipe(pipe::acquire().map_err(|e| Stop::Fail(e.into()))?)
        }
        _ => Peek::No,
    };
    let r = copy(job, &mut peek);
    if let Peek::Pipe(p) = peek {
        pipe::release(p);
    }
    r
}

/// O_DIRECT does not work here (procfs, or alignment the file system refuses): the rest is
/// read through the page cache, released behind the transfer as with DropBehind, and the
/// report says so.
fn buffered_instead(job: &mut Job<'_>, errno: Option<i32>, why: &str) {
    job.report.fallbacks.push(Fallback {
        from: Method::ReadWrite,
        to: Method::ReadWrite,
        reason: format!(
            "O_DIRECT reads refused ({why}): reading through the page cache with drop-behind"
        ),
        errno,
    });
}

/// Copies with O_DIRECT reads: each read starts at the aligned offset at or before the next
/// byte and asks for whole blocks; the bytes before the next one and past the count are not
/// sent. EOF is a short read.
///
/// To a socket, a chunk whose pages are all in the page cache already is sent from there with
/// sendfile instead ([`send_cached`]): a hot file is not read again from the disk, and the
/// cache gains nothing either way.
fn copy_direct(job: &mut Job<'_>, direct: BorrowedFd<'_>) -> Step {
    let mut buf = AlignedBuf::new(DIRECT_BUF);
    let to_socket = matches!(job.di.kind, FdKind::Stream(_)) && job.dst_pos.is_none();
    while job.more()? {
        let Some(off) = job.offset() else {
            return Err(Stop::Fallback {
                errno: None,
                reason: "no source offset".into(),
            });
        };
        let skip = (off % ALIGN as u64) as usize;
        let cached = job.want(CACHED_CHUNK);
        if to_socket && cache::all_cached(job.src, off, cached) {
            if send_cached(job, off, cached)? {
                return Ok(());
            }
            continue;
        }
        let want = job.want(DIRECT_BUF - skip);
        let len = (skip + want).div_ceil(ALIGN) * ALIGN;
        let bytes = buf.bytes();
        match sys::read(
            direct,
            &mut bytes[..len.min(DIRECT_BUF)],
            Some(off - skip as u64),
        ) {
            Ok(n) if n <= skip => return Ok(()),
            Ok(n) => write_all(job, &bytes[skip..skip + (n - skip).min(want)])?,
            Err(e) if e.raw_os_error() == Some(libc::EINTR) => job.interrupted()?,
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) && job.report.bytes == 0 => {
                return Err(Stop::Fallback {
                    errno: Some(libc::EINVAL),
                    reason: e.to_string(),
                });
            }
            Err(e) => return Err(job.stop_for(e)),
        }
    }
    Ok(())
}

/// One sendfile of `want` bytes at `off` of the source, all in the page cache, to the socket:
/// returns whether the file ended there (it shrank since the check).
fn send_cached(job: &mut Job<'_>, off: u64, want: usize) -> Result<bool, Stop> {
    let mut at = off;
    match sys::sendfile(job.dst, job.src, Some(&mut at), want) {
        Ok(0) => Ok(true),
        Ok(n) => job.delivered_of(n, want).map(|()| false),
        Err(e) => job.handle(e, Side::Dst).map(|()| false),
    }
}

/// How bytes are taken from the source.
enum Peek {
    /// `read`: taken at once.
    No,
    /// `recv(MSG_PEEK)`, consumed after the write.
    Socket,
    /// `tee` into the engine's pipe and read from there, consumed after the write.
    Pipe(Pipe),
}

fn copy(job: &mut Job<'_>, peek: &mut Peek) -> Step {
    let mut buf = vec![0u8; job.want(BUF).max(1)];
    while job.more()? {
        let want = job.want(buf.len());
        let r = match peek {
            Peek::No => sys::read(job.src, &mut buf[..want], job.offset()),
            Peek::Socket => sys::recv(job.src, &mut buf[..want], libc::MSG_PEEK),
            Peek::Pipe(p) => tee_read(job, p, &mut buf[..want]),
        };
        let n = match r {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) => {
                job.handle(e, Side::Src)?;
                continue;
            }
        };
        if let Peek::No = peek {
            write_all(job, &buf[..n])?;
        } else {
            write_peeked(job, &mut buf[..n])?;
        }
    }
    Ok(())
}

/// Copies up to `buf.len()` bytes of the source pipe into `buf` without consuming them.
fn tee_read(job: &Job<'_>, own: &Pipe, buf: &mut [u8]) -> std::io::Result<usize> {
    let want = buf.len().min(own.capacity());
    let n = sys::tee(job.src, own.writer(), want, sys::SPLICE_F_NONBLOCK)?;
    let mut got = 0;
    while got < n {
        match sys::read(own.reader(), &mut buf[got..n], None) {
            Ok(0) => break,
            Ok(k) => got += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

/// Writes `data`, peeked from a socket or pipe source, consuming from the source exactly what
/// each write delivered.
fn write_peeked(job: &mut Job<'_>, data: &mut [u8]) -> Step {
    let mut at = 0;
    while at < data.len() {
        match sys::write(job.dst, &data[at..], job.dst_pos) {
            Ok(n) => {
                consume(job, &mut data[at..at + n])?;
                at += n;
                job.delivered(n);
            }
            Err(e) => job.handle(e, Side::Dst)?,
        }
    }
    Ok(())
}

/// Takes `scratch.len()` bytes, already peeked and delivered, off the source (MSG_TRUNC
/// discards them in TCP without a copy; elsewhere the same bytes are read again).
fn consume(job: &mut Job<'_>, scratch: &mut [u8]) -> Step {
    let mut got = 0;
    while got < scratch.len() {
        let r = if job.si.is_stream() {
            sys::recv(job.src, &mut scratch[got..], libc::MSG_TRUNC)
        } else {
            sys::read(job.src, &mut scratch[got..], None)
        };
        match r {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.raw_os_error() == Some(libc::EINTR) => {}
            Err(e) => return Err(Stop::Fail(e.into())),
        }
    }
    Ok(())
}

/// Writes all of `data`, which was taken from the source, recording each delivered byte.
/// If it cannot, bytes taken from a stream source are lost with the error: say so.
pub(crate) fn write_all(job: &mut Job<'_>, data: &[u8]) -> Step {
    let mut at = 0;
    while at < data.len() {
        match sys::write(job.dst, &data[at..], job.dst_pos) {
            Ok(n) => {
                at += n;
                if let Err(stop) = job.delivered_of(n, data.len() - at + n) {
                    return Err(lost(job, stop, data.len() - at));
                }
            }
            Err(e) => {
                if let Err(stop) = job.handle(e, Side::Dst) {
                    return Err(lost(job, stop, data.len() - at));
                }
            }
        }
    }
    Ok(())
}

/// A stop with `n` bytes taken from the source but not delivered. A seekable source gets them
/// back through its position; a stream source cannot, so the error must not be a quiet
/// fallback and its message says how many bytes were lost.
pub(crate) fn lost(job: &mut Job<'_>, stop: Stop, n: usize) -> Stop {
    if job.offset().is_some() || n == 0 {
        return stop;
    }
    let e = match stop {
        Stop::Fail(e) => e,
        Stop::Fallback {
            errno: Some(errno), ..
        } => crate::Error::from_errno(errno),
        Stop::Fallback {
            errno: None,
            reason,
        } => crate::Error::unsupported(reason),
        Stop::Eof => return Stop::Eof,
    };
    job.report.undelivered += n as u64;
    Stop::Fail(e)
}
