//! `mmap(2)` the source file and `write(2)` from the mapping: one copy, no read syscalls.
//! Also the plain-send half of `msg_zerocopy` (see `msg_zerocopy.rs`).

use crate::job::{Job, Side, Step, Stop};
use crate::sys::{self, Mapping};

/// Largest mapping made at once (address space is cheap, but a bound keeps page tables small).
const MAX_MAP: u64 = 1 << 30;
/// Bytes handed to the kernel per write: the source's size is checked again before each.
pub(crate) const CHUNK: usize = 1 << 20;

pub(crate) fn run(job: &mut Job<'_>) -> Step {
    let mut size = job.si.size;
    while let Some(map) = next_mapping(job, &mut size)? {
        let mut at = 0;
        while at < map.len() {
            if !job.more()? {
                return Ok(());
            }
            let Some(n) = within_size(job, map.len() - at, &mut size)? else {
                return Ok(());
            };
            let r = if job.di.is_stream() {
                // Never block inside the send: a file truncated meanwhile would hand the
                // kernel zeroed or vanished pages. Wait outside, then look at the size again.
                map.send_to(job.dst, at, n, libc::MSG_DONTWAIT)
                    .map(|k| (k, k))
            } else {
                map.write_to(job.dst, at, n, job.dst_pos).map(|k| (k, n))
            };
            match r {
                Ok((k, asked)) => {
                    job.delivered_of(k, asked)?;
                    at += k;
                }
                Err(e) if e.raw_os_error() == Some(libc::EFAULT) => {
                    if shrunk(job, &mut size)? {
                        return Ok(());
                    }
                    break;
                }
                Err(e) => job.handle(e, Side::Dst)?,
            }
        }
    }
    Ok(())
}

/// How much of `left` mapped bytes may be sent now: never past the source's current end (it
/// may have been truncated since it was mapped). `None` at the end.
pub(crate) fn within_size(
    job: &mut Job<'_>,
    left: usize,
    size: &mut u64,
) -> Result<Option<usize>, Stop> {
    *size = current_size(job)?;
    let pos = job.offset().unwrap_or(0);
    if pos >= *size {
        return Ok(None);
    }
    Ok(Some(left.min(CHUNK).min((*size - pos) as usize)))
}

/// The kernel faulted on a mapped page: the file shrank under us. `true` when the next byte
/// is at or past the new end (the transfer ends there, exactly as `read` would); otherwise the
/// caller maps again from the next byte.
pub(crate) fn shrunk(job: &mut Job<'_>, size: &mut u64) -> Result<bool, Stop> {
    *size = current_size(job)?;
    Ok(job.offset().is_none_or(|pos| pos >= *size))
}

fn current_size(job: &Job<'_>) -> Result<u64, Stop> {
    Ok(sys::fstat(job.src)
        .map_err(|e| Stop::Fail(e.into()))?
        .st_size
        .max(0) as u64)
}

/// Maps the next stretch of the source, or `None` at EOF or when the count is reached.
/// `size` is the source size as last seen; at its end the file is checked again for growth.
pub(crate) fn next_mapping(job: &mut Job<'_>, size: &mut u64) -> Result<Option<Mapping>, Stop> {
    if job.done() {
        return Ok(None);
    }
    let pos = job.explicit_pos()?.unwrap_or(0);
    if pos >= *size {
        *size = sys::fstat(job.src)
            .map_err(|e| Stop::Fail(e.into()))?
            .st_size
            .max(0) as u64;
        if pos >= *size {
            if job.has_data()? {
                // procfs and sysfs generate content that no mapping can show.
                return Err(Stop::Fallback {
                    errno: None,
                    reason: format!(
                        "the source has data past its reported size {size} (procfs?): \
                         it cannot be mapped"
                    ),
                });
            }
            return Ok(None);
        }
    }
    let len = job.want((*size - pos).min(MAX_MAP) as usize);
    match Mapping::new(job.src, pos, len) {
        Ok(m) => Ok(Some(m)),
        Err(e) if matches!(e.raw_os_error(), Some(libc::ENODEV | libc::EACCES)) => {
            Err(Stop::Fallback {
                errno: e.raw_os_error(),
                reason: format!("mmap: {e}"),
            })
        }
        Err(e) => Err(job.stop_for(e)),
    }
}
