//! `mmap(2)` the source file and `write(2)` from the mapping: one copy, no read syscalls.
//! Also the plain-send half of `msg_zerocopy` (see `msg_zerocopy.rs`).

use crate::sys::{self, Mapping};
use crate::transfer::{Job, Side, Step, Stop};

/// Largest mapping made at once (address space is cheap, but a bound keeps page tables small).
const MAX_MAP: u64 = 1 << 30;

pub(crate) fn run(job: &mut Job<'_>) -> Step {
    let mut size = job.si.size;
    while let Some(map) = next_mapping(job, &mut size)? {
        let mut at = 0;
        while at < map.len() {
            match map.write_to(job.dst, at, map.len() - at, job.dst_pos) {
                Ok(n) => {
                    job.delivered_of(n, map.len() - at)?;
                    at += n;
                }
                Err(e) if e.raw_os_error() == Some(libc::EFAULT) => return truncated(job),
                Err(e) => job.handle(e, Side::Dst)?,
            }
        }
    }
    Ok(())
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

/// The kernel faulted on a mapped page: the file shrank under us. Stop at its new end, as
/// `read` would report EOF there.
pub(crate) fn truncated(job: &mut Job<'_>) -> Step {
    let size = sys::fstat(job.src)
        .map_err(|e| Stop::Fail(e.into()))?
        .st_size
        .max(0) as u64;
    match job.offset() {
        Some(pos) if pos >= size.saturating_sub(4096) => Ok(()),
        _ => Err(Stop::Fail(
            std::io::Error::from_raw_os_error(libc::EFAULT).into(),
        )),
    }
}
