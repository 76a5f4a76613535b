//! `splice(2)`: directly when one side is a pipe, otherwise through a pooled pipe.

use crate::fd::FdKind;
use crate::job::{Job, Side, Step, Stop};
use crate::pipe::{self, Pipe};
use crate::sys;

use super::read_write;

pub(crate) fn run(job: &mut Job<'_>) -> Step {
    job.explicit_pos()?;
    if job.si.kind == FdKind::Pipe || job.di.kind == FdKind::Pipe {
        direct(job)
    } else {
        let mut pipe = pipe::acquire().map_err(|e| {
            if pipe::is_scarce(&e) {
                // A method that needs no pipe does the transfer instead (sendfile for a file
                // source, read/write otherwise); the report says why.
                Stop::Fallback {
                    errno: None,
                    reason: e.to_string(),
                }
            } else {
                Stop::Fail(e.into())
            }
        })?;
        let r = through(job, &mut pipe);
        // A pipe still holding bytes is closed here, never reused.
        pipe::release(pipe);
        r
    }
}

/// Flags for a splice of `this` bytes into the destination.
///
/// SPLICE_F_MORE (MSG_MORE on a socket) only when more bytes are known to follow (see
/// [`Job::more_follows`]). SPLICE_F_NONBLOCK when the call has a deadline or a non-blocking
/// descriptor, so a pipe side never blocks past it.
fn flags(job: &Job<'_>, this: usize) -> u32 {
    let mut flags = sys::SPLICE_F_MOVE;
    if job.di.is_stream() && job.more_follows(this) {
        flags |= sys::SPLICE_F_MORE;
    }
    if job.waiter.bounded() || job.si.nonblocking() || job.di.nonblocking() {
        flags |= sys::SPLICE_F_NONBLOCK;
    }
    flags
}

/// One side is a pipe: splice straight from `src` to `dst`; what leaves `src` reaches `dst`.
fn direct(job: &mut Job<'_>) -> Step {
    while job.more()? {
        let want = job.want(sys::MAX_RW);
        let flags = flags(job, want);
        let (mut off, mut out) = (job.offset(), job.dst_pos);
        match sys::splice(job.src, off.as_mut(), job.dst, out.as_mut(), want, flags) {
            Ok(0) if at_urgent_mark(job) => {
                if past_urgent_mark(job)? == Fill::Eof {
                    return Ok(());
                }
            }
            Ok(0) => return Ok(()),
            // Short from a file means EOF or a signal; from a pipe or socket it is normal.
            Ok(n) if job.offset().is_some() => job.delivered_of(n, want)?,
            Ok(n) => job.delivered(n),
            Err(e) if e.raw_os_error() == Some(libc::EAGAIN) => {
                if job.wait_for(Side::Both)? & sys::POLLPRI != 0
                    && at_urgent_mark(job)
                    && past_urgent_mark(job)? == Fill::Eof
                {
                    return Ok(());
                }
            }
            Err(e) => job.handle(e, Side::Both)?,
        }
    }
    Ok(())
}

/// Neither side is a pipe: source -> pooled pipe -> destination.
fn through(job: &mut Job<'_>, pipe: &mut Pipe) -> Step {
    loop {
        if pipe.held == 0 {
            if !job.more()? {
                return Ok(());
            }
            match fill(job, pipe)? {
                Fill::Eof => return Ok(()),
                Fill::Again => continue,
                Fill::Filled => {}
            }
        }
        let flags = flags(job, pipe.held);
        let mut out = job.dst_pos;
        match sys::splice(pipe.reader(), None, job.dst, out.as_mut(), pipe.held, flags) {
            Ok(n) => {
                let asked = pipe.held;
                pipe.held -= n;
                if let Err(stop) = job.delivered_of(n, asked) {
                    return Err(rescue(job, pipe, stop));
                }
            }
            Err(e) => {
                if let Err(stop) = job.handle(e, Side::Dst) {
                    return Err(rescue(job, pipe, stop));
                }
            }
        }
    }
}

/// What filling the pipe did.
#[derive(Debug, PartialEq, Eq)]
enum Fill {
    /// The pipe holds bytes to splice out.
    Filled,
    /// Nothing yet (waited for the source, or wrote bytes past an urgent mark): try again.
    Again,
    /// The source ended.
    Eof,
}

/// Splices the next stretch of the source into the empty pipe.
fn fill(job: &mut Job<'_>, pipe: &mut Pipe) -> Result<Fill, Stop> {
    let want = job.want(pipe.capacity());
    // The offset is that of the next byte to deliver: the pipe is empty.
    let mut off = job.offset();
    let fill_flags = flags(job, 0) & !sys::SPLICE_F_MORE;
    match sys::splice(job.src, off.as_mut(), pipe.writer(), None, want, fill_flags) {
        Ok(0) if at_urgent_mark(job) => past_urgent_mark(job),
        Ok(0) => Ok(Fill::Eof),
        Ok(n) => {
            pipe.held = n;
            Ok(Fill::Filled)
        }
        // Our empty pipe always has room: the source is the side that blocked. A source that
        // cannot block (a file) with a full pipe is not ours to wait for: the pipe is.
        Err(e) if e.raw_os_error() == Some(libc::EAGAIN) && job.si.may_block() => {
            if job.wait_for(Side::Src)? & sys::POLLPRI != 0 && at_urgent_mark(job) {
                return past_urgent_mark(job);
            }
            Ok(Fill::Again)
        }
        Err(e) if e.raw_os_error() == Some(libc::EAGAIN) => {
            job.wait_own(pipe.writer(), sys::POLLOUT)?;
            Ok(Fill::Again)
        }
        Err(e) => job.handle(e, Side::Src).map(|()| Fill::Again),
    }
}

/// Whether a TCP source sits at its urgent (MSG_OOB) mark: splice returns 0 or EAGAIN there for
/// ever (it cannot step over the urgent byte), which would look like EOF or spin.
fn at_urgent_mark(job: &Job<'_>) -> bool {
    job.si.is_tcp() && sys::at_urgent_mark(job.src).unwrap_or(false)
}

/// Steps over the urgent mark as `read` does: `recv` skips the urgent byte (it is not part of
/// the stream unless SO_OOBINLINE) and returns the bytes after it, which are written out.
fn past_urgent_mark(job: &mut Job<'_>) -> Result<Fill, Stop> {
    let mut buf = vec![0u8; job.want(64 * 1024).max(1)];
    match sys::recv(job.src, &mut buf, 0) {
        Ok(0) => Ok(Fill::Eof),
        Ok(n) => read_write::write_all(job, &buf[..n]).map(|()| Fill::Again),
        Err(e) if e.raw_os_error() == Some(libc::EAGAIN) => Ok(Fill::Again),
        Err(e) => job.handle(e, Side::Src).map(|()| Fill::Again),
    }
}

/// splice out of the pipe failed, or the call is ending early (deadline, zero timeout,
/// interrupt). Bytes from a seekable source are given back through the position (they were
/// never counted); bytes from a stream source exist only in the pipe: they are written out
/// with read/write — at once on a fallback, and on an early end as far as the destination
/// takes them without waiting — and whatever remains is reported as undelivered.
fn rescue(job: &mut Job<'_>, pipe: &mut Pipe, stop: Stop) -> Stop {
    if pipe.held == 0 || job.offset().is_some() {
        return stop;
    }
    let mut buf = vec![0u8; pipe.held];
    let mut got = 0;
    while got < buf.len() {
        match sys::read(pipe.reader(), &mut buf[got..], None) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    pipe.held -= got;
    let lost_in_pipe = pipe.held;
    let written = match stop {
        Stop::Fallback { .. } => read_write::write_all(job, &buf[..got]).map(|()| got),
        _ => Ok(flush_without_waiting(job, &buf[..got])),
    };
    match written {
        Ok(n) => read_write::lost(job, stop, got - n + lost_in_pipe),
        Err(s) => s,
    }
}

/// Writes as much of `data` as the destination takes now. Returns how much it took.
fn flush_without_waiting(job: &mut Job<'_>, data: &[u8]) -> usize {
    let mut at = 0;
    while at < data.len() {
        let r = if job.di.is_stream() {
            sys::send(job.dst, &data[at..], libc::MSG_DONTWAIT)
        } else {
            sys::write(job.dst, &data[at..], job.dst_pos)
        };
        match r {
            Ok(0) => break,
            Ok(n) => {
                at += n;
                job.delivered(n);
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    at
}
