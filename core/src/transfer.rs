//! The transfer loop (being written).

use std::os::fd::{AsFd, BorrowedFd, RawFd};

use crate::error::{Error, Result};
use crate::fd::FdInfo;
use crate::options::Options;
use crate::report::Report;
use crate::sys;

/// Moves bytes from `src` to `dst`.
pub fn transfer(src: impl AsFd, dst: impl AsFd, opts: &Options) -> Result<Report> {
    let _ = (src.as_fd(), dst.as_fd(), opts);
    Err(Error::unsupported("not yet"))
}

/// [`transfer`] on raw descriptor numbers.
pub fn transfer_fds(src: RawFd, dst: RawFd, opts: &Options) -> Result<Report> {
    if src < 0 || dst < 0 {
        return Err(Error::invalid(format!("negative file descriptor ({src}, {dst})")));
    }
    let s = sys::dup(src)?;
    let d = sys::dup(dst)?;
    transfer(&s, &d, opts)
}

/// Sets O_NONBLOCK on a borrowed fd for its lifetime and restores the flags on drop.
pub(crate) struct NonblockGuard<'a> {
    fd: BorrowedFd<'a>,
    restore: Option<i32>,
}

impl<'a> NonblockGuard<'a> {
    pub(crate) fn set(fd: BorrowedFd<'a>, info: &FdInfo) -> Result<NonblockGuard<'a>> {
        if info.nonblocking() {
            return Ok(NonblockGuard { fd, restore: None });
        }
        sys::set_fl(fd, info.flags | libc::O_NONBLOCK)?;
        Ok(NonblockGuard { fd, restore: Some(info.flags) })
    }
}

impl Drop for NonblockGuard<'_> {
    fn drop(&mut self) {
        if let Some(flags) = self.restore {
            let _ = sys::set_fl(self.fd, flags);
        }
    }
}
