//! Read-only file mappings for the `mmap` and `MSG_ZEROCOPY` methods.

use std::io;
use std::num::NonZeroUsize;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::ptr::NonNull;

use nix::sys::mman::{MapFlags, MmapAdvise, ProtFlags, madvise, mmap, munmap};
use nix::unistd::{SysconfVar, sysconf};

use super::{counted, cvt};

/// A read-only shared mapping of `[offset, offset + len)` of a file.
///
/// The mapping is only ever handed to the kernel (`write`, `send`), never read in user space:
/// if the file shrinks, the kernel turns the fault into EFAULT instead of the SIGBUS a user-space
/// read past the new EOF would raise.
pub struct Mapping {
    base: NonNull<u8>,
    map_len: usize,
    /// Distance from `base` to the byte at the requested offset (offset is not page aligned).
    skew: usize,
    len: usize,
}

// SAFETY: the mapping is plain read-only memory; it is only unmapped in Drop, which needs &mut.
unsafe impl Send for Mapping {}
// SAFETY: shared references only expose pointers for the kernel to read.
unsafe impl Sync for Mapping {}

fn page_size() -> usize {
    match sysconf(SysconfVar::PAGE_SIZE) {
        Ok(Some(n)) if n > 0 => n as usize,
        _ => 4096,
    }
}

impl Mapping {
    /// Maps `len` (> 0) bytes of `fd` from `offset`.
    pub fn new(fd: BorrowedFd<'_>, offset: u64, len: usize) -> io::Result<Mapping> {
        let page = page_size() as u64;
        let aligned = offset - offset % page;
        let skew = (offset - aligned) as usize;
        let map_len = len
            .checked_add(skew)
            .and_then(NonZeroUsize::new)
            .ok_or_else(|| io::Error::from_raw_os_error(libc::EINVAL))?;
        // SAFETY: a fresh mapping (no address asked for) touches no existing memory; the kernel
        // validates the rest.
        let p = counted(unsafe {
            mmap(
                None,
                map_len,
                ProtFlags::PROT_READ,
                MapFlags::MAP_SHARED,
                fd,
                aligned as libc::off_t,
            )
        })?;
        let map_len = map_len.get();
        // SAFETY: [p, p + map_len) is the mapping just created. The advice is only a hint.
        let _ = counted(unsafe { madvise(p, map_len, MmapAdvise::MADV_SEQUENTIAL) });
        Ok(Mapping {
            base: p.cast(),
            map_len,
            skew,
            len,
        })
    }

    /// Length of the requested range.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Pointer to byte `at` of the requested range, for the kernel to read `n` bytes from.
    pub fn ptr_at(&self, at: usize) -> *const u8 {
        debug_assert!(at <= self.len);
        // SAFETY: skew + at <= map_len, so the result stays inside (or one past) the mapping.
        unsafe { self.base.as_ptr().add(self.skew + at) }
    }

    /// `write(2)` (or `pwrite(2)` at `off`) of `[at, at + n)` of the mapping to `fd`.
    pub fn write_to(
        &self,
        fd: BorrowedFd<'_>,
        at: usize,
        n: usize,
        off: Option<u64>,
    ) -> io::Result<usize> {
        let n = n.min(self.len - at).min(super::MAX_RW);
        let p = self.ptr_at(at).cast();
        // SAFETY: [at, at + n) lies inside the mapping, which is alive for the call.
        let r = cvt(unsafe {
            match off {
                Some(o) => libc::pwrite(fd.as_raw_fd(), p, n, o as i64),
                None => libc::write(fd.as_raw_fd(), p, n),
            }
        })?;
        Ok(r as usize)
    }

    /// `send(2)` of `[at, at + n)` of the mapping to a socket, with `flags` | MSG_NOSIGNAL.
    pub fn send_to(
        &self,
        fd: BorrowedFd<'_>,
        at: usize,
        n: usize,
        flags: i32,
    ) -> io::Result<usize> {
        let n = n.min(self.len - at).min(super::MAX_RW);
        // SAFETY: [at, at + n) lies inside the mapping, which is alive for the call.
        let r = cvt(unsafe {
            libc::send(
                fd.as_raw_fd(),
                self.ptr_at(at).cast(),
                n,
                flags | libc::MSG_NOSIGNAL,
            )
        })?;
        Ok(r as usize)
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: base/map_len describe the mapping created in `new`, unmapped only here.
        let _ = counted(unsafe { munmap(self.base.cast(), self.map_len) });
    }
}
