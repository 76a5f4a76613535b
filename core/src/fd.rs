//! What kind of file a descriptor is, and how it was opened.

use std::os::fd::BorrowedFd;

use crate::error::{Error, Result};
use crate::sys;

/// The kind of file behind a descriptor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FdKind {
    /// A regular file (seekable, mappable).
    Regular,
    /// A block device (seekable).
    Block,
    /// A character device (`/dev/null`, `/dev/zero`, a tty).
    Char,
    /// A pipe or FIFO.
    Pipe,
    /// A stream socket: TCP over IPv4/IPv6, or Unix.
    Stream(SockFamily),
    /// A datagram (or other non-stream) socket.
    Datagram,
    /// A directory.
    Directory,
    /// Anything else (epoll, eventfd, ...).
    Other,
}

/// Address family of a stream socket.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SockFamily {
    /// TCP over IPv4.
    Inet,
    /// TCP over IPv6.
    Inet6,
    /// Unix domain.
    Unix,
    /// Another family.
    Other,
}

/// Access mode of a descriptor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Access {
    /// O_RDONLY.
    Read,
    /// O_WRONLY.
    Write,
    /// O_RDWR.
    ReadWrite,
    /// O_PATH or unknown: neither readable nor writable.
    None,
}

/// Everything the engine needs to know about a descriptor, read with `fstat` and `F_GETFL`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FdInfo {
    /// The kind of file.
    pub kind: FdKind,
    /// Size in bytes for regular files and block devices (0 for procfs and the like).
    pub size: u64,
    /// Device and inode: identifies the file (same-file checks, MSG_ZEROCOPY id registry).
    pub dev_ino: (u64, u64),
    /// The file status flags (`F_GETFL`).
    pub flags: i32,
}

impl FdInfo {
    /// The access mode.
    pub fn access(&self) -> Access {
        if self.flags & libc::O_PATH == libc::O_PATH {
            return Access::None;
        }
        match self.flags & libc::O_ACCMODE {
            libc::O_RDONLY => Access::Read,
            libc::O_WRONLY => Access::Write,
            libc::O_RDWR => Access::ReadWrite,
            _ => Access::None,
        }
    }

    /// Opened with O_APPEND.
    pub fn append(&self) -> bool {
        self.flags & libc::O_APPEND != 0
    }

    /// Opened with O_NONBLOCK.
    pub fn nonblocking(&self) -> bool {
        self.flags & libc::O_NONBLOCK != 0
    }

    /// Has a file position that `offset` can address.
    pub fn seekable(&self) -> bool {
        matches!(self.kind, FdKind::Regular | FdKind::Block)
    }

    /// Can make a caller wait (and so needs poll and O_NONBLOCK for deadlines).
    pub fn may_block(&self) -> bool {
        matches!(
            self.kind,
            FdKind::Pipe | FdKind::Stream(_) | FdKind::Datagram | FdKind::Char | FdKind::Other
        )
    }

    /// A TCP socket (IPv4 or IPv6).
    pub fn is_tcp(&self) -> bool {
        matches!(
            self.kind,
            FdKind::Stream(SockFamily::Inet | SockFamily::Inet6)
        )
    }

    /// A stream socket of any family.
    pub fn is_stream(&self) -> bool {
        matches!(self.kind, FdKind::Stream(_))
    }
}

/// Classifies a descriptor (`fstat`, `F_GETFL`, and for sockets `SO_TYPE` / `SO_DOMAIN`).
pub fn classify(fd: BorrowedFd<'_>) -> Result<FdInfo> {
    let st = sys::fstat(fd)?;
    let flags = sys::get_fl(fd)?;
    let kind = match st.st_mode & libc::S_IFMT {
        libc::S_IFREG => FdKind::Regular,
        libc::S_IFBLK => FdKind::Block,
        libc::S_IFCHR => FdKind::Char,
        libc::S_IFIFO => FdKind::Pipe,
        libc::S_IFDIR => FdKind::Directory,
        libc::S_IFSOCK => socket_kind(fd)?,
        _ => FdKind::Other,
    };
    let size = match kind {
        FdKind::Block => block_size(fd),
        _ => st.st_size.max(0) as u64,
    };
    Ok(FdInfo {
        kind,
        size,
        dev_ino: (st.st_dev, st.st_ino),
        flags,
    })
}

fn socket_kind(fd: BorrowedFd<'_>) -> Result<FdKind> {
    if sys::getsockopt_int(fd, libc::SOL_SOCKET, libc::SO_TYPE)? != libc::SOCK_STREAM {
        return Ok(FdKind::Datagram);
    }
    let family = match sys::getsockopt_int(fd, libc::SOL_SOCKET, libc::SO_DOMAIN)? {
        libc::AF_INET => SockFamily::Inet,
        libc::AF_INET6 => SockFamily::Inet6,
        libc::AF_UNIX => SockFamily::Unix,
        _ => SockFamily::Other,
    };
    Ok(FdKind::Stream(family))
}

/// A block device's size is not in st_size; its end is where SEEK_END lands.
fn block_size(fd: BorrowedFd<'_>) -> u64 {
    let Ok(here) = sys::lseek(fd, 0, libc::SEEK_CUR) else {
        return 0;
    };
    let end = sys::lseek(fd, 0, libc::SEEK_END).unwrap_or(0);
    let _ = sys::lseek(fd, here as i64, libc::SEEK_SET);
    end
}

/// Checks that `fd` can be read from.
pub(crate) fn check_readable(info: &FdInfo, what: &str) -> Result<()> {
    match info.kind {
        FdKind::Directory => return Err(Error::from_errno(libc::EISDIR)),
        FdKind::Datagram => {
            return Err(Error::unsupported(format!(
                "{what} is a datagram socket: message boundaries cannot be kept in a byte stream"
            )));
        }
        FdKind::Other => {
            return Err(Error::unsupported(format!(
                "{what} is not a file, pipe or socket"
            )));
        }
        _ => {}
    }
    if matches!(info.access(), Access::Write | Access::None) {
        return Err(Error::from_errno(libc::EBADF));
    }
    Ok(())
}

/// Checks that `fd` can be written to as a byte stream.
/// (A datagram socket passes here; `transfer` only lets counted transfers from a file reach it.)
pub(crate) fn check_writable(info: &FdInfo, what: &str) -> Result<()> {
    match info.kind {
        FdKind::Directory => return Err(Error::from_errno(libc::EISDIR)),
        FdKind::Other => {
            return Err(Error::unsupported(format!(
                "{what} is not a file, pipe or socket"
            )));
        }
        _ => {}
    }
    if matches!(info.access(), Access::Read | Access::None) {
        return Err(Error::from_errno(libc::EBADF));
    }
    Ok(())
}
