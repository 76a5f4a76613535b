//! MSG_ZEROCOPY: sends from caller memory and completions from the socket's error queue.
//! See the kernel's Documentation/networking/msg_zerocopy.rst.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

use nix::sys::socket::{ControlMessageOwned, MsgFlags, recvmsg};

use super::counted;

const ZEROCOPY: MsgFlags = MsgFlags::from_bits_retain(libc::MSG_ZEROCOPY | libc::MSG_NOSIGNAL);

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
    counted(nix::sys::socket::send(
        fd.as_raw_fd(),
        &buf[..len],
        ZEROCOPY,
    ))
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
        // SAFETY: [ptr + at, ptr + at + len) is inside the buffer the creator vouched for:
        // readable and unchanged while the kernel may read it.
        let buf = unsafe { std::slice::from_raw_parts(self.ptr.add(at), len) };
        send_zerocopy(fd, buf)
    }
}

/// Reads completions from the socket's error queue without waiting, appending them to `out`.
/// Returns how many messages were read. Non-zerocopy error-queue messages are skipped.
pub fn recv_zc_completions(fd: BorrowedFd<'_>, out: &mut Vec<ZcCompletion>) -> io::Result<usize> {
    // Room for one IP_RECVERR / IPV6_RECVERR record with its offender address.
    let mut control = nix::cmsg_space!(libc::sock_extended_err, libc::sockaddr_in6);
    let flags = MsgFlags::MSG_ERRQUEUE | MsgFlags::MSG_DONTWAIT;
    let mut read = 0;
    loop {
        let msg = match counted(recvmsg::<()>(
            fd.as_raw_fd(),
            &mut [],
            Some(&mut control),
            flags,
        )) {
            Ok(msg) => msg,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(read),
            Err(e) => return Err(e),
        };
        read += 1;
        // A truncated control message (it never is, with the room above) holds no record.
        let Ok(cmsgs) = msg.cmsgs() else { continue };
        for cmsg in cmsgs {
            let ee = match cmsg {
                ControlMessageOwned::Ipv4RecvErr(ee, _)
                | ControlMessageOwned::Ipv6RecvErr(ee, _) => ee,
                _ => continue,
            };
            if ee.ee_errno == 0 && ee.ee_origin == SO_EE_ORIGIN_ZEROCOPY {
                out.push(ZcCompletion {
                    lo: ee.ee_info,
                    hi: ee.ee_data,
                    copied: ee.ee_code & SO_EE_CODE_ZEROCOPY_COPIED != 0,
                });
            }
        }
    }
}
