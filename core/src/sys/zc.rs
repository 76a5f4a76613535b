//! MSG_ZEROCOPY: sends from caller memory and completions from the socket's error queue.
//! See the kernel's Documentation/networking/msg_zerocopy.rst.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

use super::cvt;

/// One completion notification: kernel send ids `lo..=hi` finished; `copied` when the kernel
/// fell back to copying the data (SO_EE_CODE_ZEROCOPY_COPIED), as it always does on loopback.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ZcCompletion {
    /// First id of the range.
    pub lo: u32,
    /// Last id of the range (inclusive).
    pub hi: u32,
    /// The kernel copied instead of sharing pages.
    pub copied: bool,
}

impl ZcCompletion {
    /// How many sends the range covers.
    pub fn count(&self) -> u64 {
        u64::from(self.hi.wrapping_sub(self.lo)) + 1
    }
}

const SO_EE_ORIGIN_ZEROCOPY: u8 = 5;
const SO_EE_CODE_ZEROCOPY_COPIED: u8 = 1;

/// `send(2)` with MSG_ZEROCOPY | MSG_NOSIGNAL.
///
/// The kernel reads `buf` after the call returns, until the completion for this send arrives:
/// the caller must keep it alive and unchanged until then ([`crate::ZeroCopySender`] and the
/// `msg_zerocopy` method hold it).
pub fn send_zerocopy(fd: BorrowedFd<'_>, buf: &[u8]) -> io::Result<usize> {
    let len = buf.len().min(super::MAX_RW);
    // SAFETY: buf is valid for reads of `len` bytes for the call.
    let n = cvt(unsafe {
        libc::send(
            fd.as_raw_fd(),
            buf.as_ptr().cast(),
            len,
            libc::MSG_ZEROCOPY | libc::MSG_NOSIGNAL,
        )
    })?;
    Ok(n as usize)
}

/// Memory owned by a foreign caller (C, Java) that the kernel may read until a completion.
pub struct ExternalBuffer {
    ptr: *const u8,
    len: usize,
}

// SAFETY: the creator promised the memory stays valid and unchanged until completion, from any
// thread; the buffer is only handed to the kernel.
unsafe impl Send for ExternalBuffer {}

impl ExternalBuffer {
    /// Wraps `len` bytes at `ptr`.
    ///
    /// # Safety
    /// `[ptr, ptr + len)` must be readable, and stay valid and unchanged until the kernel's
    /// completion for every send made from it has arrived.
    pub unsafe fn new(ptr: *const u8, len: usize) -> ExternalBuffer {
        ExternalBuffer { ptr, len }
    }

    /// Its length.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether it is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// `send(MSG_ZEROCOPY)` of the bytes from `at` to the end.
    pub fn send_zerocopy_from(&self, fd: BorrowedFd<'_>, at: usize) -> io::Result<usize> {
        let len = (self.len - at.min(self.len)).min(super::MAX_RW);
        // SAFETY: [ptr + at, ptr + at + len) is inside the buffer the creator vouched for.
        let n = cvt(unsafe {
            libc::send(
                fd.as_raw_fd(),
                self.ptr.add(at).cast(),
                len,
                libc::MSG_ZEROCOPY | libc::MSG_NOSIGNAL,
            )
        })?;
        Ok(n as usize)
    }
}

/// Reads completions from the socket's error queue without waiting, appending them to `out`.
/// Returns how many messages were read. Non-zerocopy error-queue messages are skipped.
pub fn recv_zc_completions(fd: BorrowedFd<'_>, out: &mut Vec<ZcCompletion>) -> io::Result<usize> {
    let mut read = 0;
    loop {
        // Room for one cmsg with a sock_extended_err (plus its offender address).
        let mut control = [0u64; 16];
        // SAFETY: an all-zero msghdr is a valid "no name, no iov" header.
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = std::mem::size_of_val(&control);
        // SAFETY: msg points to valid control storage of the length given.
        let r = cvt(unsafe {
            libc::recvmsg(
                fd.as_raw_fd(),
                &mut msg,
                libc::MSG_ERRQUEUE | libc::MSG_DONTWAIT,
            )
        });
        match r {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(read),
            Err(e) => return Err(e),
        }
        read += 1;
        // SAFETY: msg was filled by recvmsg; CMSG_* walk the control buffer it describes.
        unsafe {
            let mut cm = libc::CMSG_FIRSTHDR(&msg);
            while !cm.is_null() {
                let c = &*cm;
                let ip = (c.cmsg_level == libc::SOL_IP && c.cmsg_type == libc::IP_RECVERR)
                    || (c.cmsg_level == libc::SOL_IPV6 && c.cmsg_type == libc::IPV6_RECVERR);
                if ip {
                    let ee = std::ptr::read_unaligned(
                        libc::CMSG_DATA(cm).cast::<libc::sock_extended_err>(),
                    );
                    if ee.ee_errno == 0 && ee.ee_origin == SO_EE_ORIGIN_ZEROCOPY {
                        out.push(ZcCompletion {
                            lo: ee.ee_info,
                            hi: ee.ee_data,
                            copied: ee.ee_code & SO_EE_CODE_ZEROCOPY_COPIED != 0,
                        });
                    }
                }
                cm = libc::CMSG_NXTHDR(&msg, cm);
            }
        }
    }
}
