//! The baseline: `read` (or `pread`) into a buffer, `write` it out.

use crate::sys;
use crate::transfer::{Job, Side, Step, Stop};

/// Buffer size: large enough that syscall overhead is small, small enough to stay in L2.
const BUF: usize = 128 * 1024;

pub(crate) fn run(job: &mut Job<'_>) -> Step {
    job.explicit_pos()?;
    let mut buf = vec![0u8; job.want(BUF).max(1)];
    loop {
        if job.done() {
            return Ok(());
        }
        let want = job.want(buf.len());
        let n = match sys::read(job.src, &mut buf[..want], job.offset()) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) => {
                job.handle(e, Side::Src)?;
                continue;
            }
        };
        write_all(job, &buf[..n])?;
    }
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
