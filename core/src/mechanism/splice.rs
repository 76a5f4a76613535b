//! `splice(2)`: directly when one side is a pipe, otherwise through a pooled pipe.

use crate::fd::FdKind;
use crate::pipe::{self, Pipe};
use crate::sys;
use crate::transfer::{Job, Side, Step, Stop};

use super::read_write;

pub(crate) fn run(job: &mut Job<'_>) -> Step {
    job.explicit_pos()?;
    if job.si.kind == FdKind::Pipe || job.di.kind == FdKind::Pipe {
        direct(job)
    } else {
        let mut pipe = pipe::acquire().map_err(|e| Stop::Fail(e.into()))?;
        let r = through(job, &mut pipe);
        // A pipe still holding bytes is closed here, never reused.
        pipe::release(pipe);
        r
    }
}

/// Flags for a splice of `this` bytes into the destination.
///
/// SPLICE_F_MORE (MSG_MORE on a socket) only when more bytes are known to follow: a final
/// chunk sent with it would sit corked in the socket. SPLICE_F_NONBLOCK when the call has a
/// deadline or a non-blocking pipe, so a pipe side never blocks past it.
fn flags(job: &Job<'_>, this: usize) -> u32 {
    let more = match (job.remaining, job.offset()) {
        (Some(r), _) => r > this as u64,
        (None, Some(pos)) => pos + (this as u64) < job.si.size,
        (None, None) => false,
    };
    let mut flags = sys::SPLICE_F_MOVE;
    if more && job.di.is_stream() {
        flags |= sys::SPLICE_F_MORE;
    }
    if job.deadline.is_some() || job.si.nonblocking() || job.di.nonblocking() {
        flags |= sys::SPLICE_F_NONBLOCK;
    }
    flags
}

/// One side is a pipe: splice straight from `src` to `dst`; what leaves `src` reaches `dst`.
fn direct(job: &mut Job<'_>) -> Step {
    loop {
        if job.done() {
            return Ok(());
        }
        let want = job.want(sys::MAX_RW);
        let flags = flags(job, want);
        let (mut off, mut out) = (job.offset(), job.dst_pos);
        match sys::splice(job.src, off.as_mut(), job.dst, out.as_mut(), want, flags) {
            Ok(0) => return Ok(()),
            // Short from a file means EOF or a signal; from a pipe or socket it is normal.
            Ok(n) if job.offset().is_some() => job.delivered_of(n, want)?,
            Ok(n) => job.delivered(n),
            Err(e) => job.handle(e, Side::Both)?,
        }
    }
}

/// Neither side is a pipe: source -> pooled pipe -> destination.
fn through(job: &mut Job<'_>, pipe: &mut Pipe) -> Step {
    loop {
        if pipe.held == 0 {
            if job.done() {
                return Ok(());
            }
            let want = job.want(pipe.capacity());
            // The offset is that of the next byte to deliver: the pipe is empty.
            let mut off = job.offset();
            let fill_flags = flags(job, 0) & !sys::SPLICE_F_MORE;
            match sys::splice(job.src, off.as_mut(), pipe.writer(), None, want, fill_flags) {
                Ok(0) => return Ok(()),
                Ok(n) => pipe.held = n,
                Err(e) => {
                    job.handle(e, Side::Src)?;
                    continue;
                }
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

/// splice out of the pipe failed. Bytes from a seekable source are given back through the
/// position (they were never counted); bytes from a stream source exist only in the pipe, so
/// on a fallback they are written out with read/write before the next method runs.
fn rescue(job: &mut Job<'_>, pipe: &mut Pipe, stop: Stop) -> Stop {
    if pipe.held == 0 || job.offset().is_some() {
        return stop;
    }
    if let Stop::Fallback { .. } = stop {
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
        return match read_write::write_all(job, &buf[..got]) {
            Ok(()) if pipe.held == 0 => stop,
            Ok(()) => read_write::lost(job, stop, pipe.held),
            Err(s) => s,
        };
    }
    let held = pipe.held;
    read_write::lost(job, stop, held)
}
