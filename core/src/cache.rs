//! The page-cache policies of a regular-file source ([`crate::Cache`]): drop-behind, and
//! O_DIRECT reads into aligned buffers.

use std::os::fd::{BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};

use crate::sys;

/// Pages are released this far behind the position: the bytes a socket may still hold (its
/// send buffer, up to 4 MiB with autotuning, and the peer's receive window, up to 6 MiB) keep
/// their pages referenced. Releasing a referenced page fails (and a failure makes the kernel
/// drain every CPU's page lists and try again, `lru_add_drain_all`): the lag stays ahead of
/// what a socket can hold, and the end of the call releases the whole range once more.
const LAG: u64 = 16 << 20;
/// Released in steps of this much, so the advice costs one syscall per 8 MiB.
const STEP: u64 = 8 << 20;

/// Drop-behind for one transfer: where it started and what has been released so far.
pub(crate) struct Behind {
    start: u64,
    from: u64,
}

impl Behind {
    /// Starts at the transfer's first source offset.
    pub(crate) fn new(start: u64) -> Behind {
        Behind { start, from: start }
    }

    /// After bytes were delivered up to `pos`: releases what is more than [`LAG`] behind, a
    /// [`STEP`] at a time. The advice is only advice: its errors change nothing.
    pub(crate) fn delivered_to(&mut self, src: BorrowedFd<'_>, pos: u64) {
        let upto = pos.saturating_sub(LAG);
        if upto >= self.from + STEP {
            let _ = sys::drop_cached(src, self.from, upto - self.from);
            self.from = upto;
        }
    }

    /// At the end of the call: releases everything delivered, from the start again, so pages
    /// a step could not release then (a socket still held them) go now; pages a socket still
    /// holds stay until it lets go of them. Ranges already released cost next to nothing.
    pub(crate) fn finish(&mut self, src: BorrowedFd<'_>, pos: u64) {
        if pos > self.start {
            let _ = sys::drop_cached(src, self.start, pos - self.start);
            self.from = pos;
        }
    }
}

/// O_DIRECT alignment of offsets, lengths and memory: the largest logical block size in use.
pub(crate) const ALIGN: usize = 4096;

/// A buffer whose start is [`ALIGN`]-aligned, as O_DIRECT reads need: a plain vector with
/// room to start at the first aligned byte.
pub(crate) struct AlignedBuf {
    raw: Vec<u8>,
    start: usize,
    len: usize,
}

impl AlignedBuf {
    /// `len` bytes (a multiple of [`ALIGN`]).
    pub(crate) fn new(len: usize) -> AlignedBuf {
        let raw = vec![0u8; len + ALIGN];
        let start = raw.as_ptr().align_offset(ALIGN).min(ALIGN);
        AlignedBuf { raw, start, len }
    }

    /// The aligned bytes.
    pub(crate) fn bytes(&mut self) -> &mut [u8] {
        &mut self.raw[self.start..self.start + self.len]
    }
}

/// Whether every page of `[off, off + len)` of the file is in the page cache now. Direct sends
/// such a range from the cache: reading it again from the disk would only be slower, and it
/// adds nothing to the cache. Without `cachestat(2)` (before Linux 6.5) the answer is no.
/// A kernel that said ENOSYS once is not asked again.
pub(crate) fn all_cached(src: BorrowedFd<'_>, off: u64, len: usize) -> bool {
    static NO_CACHESTAT: AtomicBool = AtomicBool::new(false);
    if NO_CACHESTAT.load(Ordering::Relaxed) {
        return false;
    }
    let page = ALIGN as u64;
    let pages = (off + len as u64).div_ceil(page) - off / page;
    match sys::cached_pages(src, off, len as u64) {
        Ok(n) => n >= pages,
        Err(e) => {
            if e.raw_os_error() == Some(libc::ENOSYS) {
                NO_CACHESTAT.store(true, Ordering::Relaxed);
            }
            false
        }
    }
}

/// A second, O_DIRECT descriptor of the source file, or why not (EINVAL on procfs).
pub(crate) fn open_direct(src: BorrowedFd<'_>) -> std::io::Result<OwnedFd> {
    sys::reopen_direct(src)
}
