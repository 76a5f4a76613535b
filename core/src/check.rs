//! What is checked before a transfer moves a byte: offsets, the kinds of the two descriptors,
//! and the pairs that would lose or corrupt data (a file copied onto itself, a stream poured
//! into a destination that can only take aligned writes).

use std::os::fd::BorrowedFd;

use crate::error::{Error, Result};
use crate::fd::{self, FdInfo, FdKind};
use crate::options::Options;
use crate::sys;

/// Every check that needs only the options and the two descriptors' classification.
pub(crate) fn pair(
    src: BorrowedFd<'_>,
    dst: BorrowedFd<'_>,
    si: &FdInfo,
    di: &FdInfo,
    opts: &Options,
) -> Result<()> {
    fd::check_readable(si, "the source")?;
    fd::check_writable(di, "the destination")?;
    if di.kind == FdKind::Datagram && !(opts.count.is_some() && si.seekable()) {
        return Err(Error::unsupported(
            "the destination is a datagram socket: it takes only counted transfers from a file, \
             sent as one datagram by one sendfile call (a byte stream would be cut into \
             arbitrary datagrams)",
        ));
    }
    if opts.offset.is_some() && !si.seekable() {
        return Err(Error::invalid(format!(
            "an offset was given but the source ({}) has no file position",
            kind_name(si.kind)
        )));
    }
    if let Some(o) = opts.dst_offset {
        destination_offset(di, o)?;
    }
    if !si.seekable() && di.flags & libc::O_DIRECT != 0 {
        return Err(Error::unsupported(format!(
            "the destination was opened with O_DIRECT, which takes only block-aligned writes: \
             bytes taken from {} could be neither written nor given back",
            kind_name(si.kind)
        )));
    }
    if si.dev_ino == di.dev_ino && si.seekable() && di.seekable() {
        same_file(src, dst, si, di, opts)?;
    }
    Ok(())
}

/// Offsets must be addressable: at most the largest file offset (2^63 - 1).
pub(crate) fn source_offset(opts: &Options) -> Result<()> {
    if opts.offset.is_some_and(|o| o > i64::MAX as u64) {
        return Err(Error::invalid(
            "offset is larger than the largest file offset (2^63 - 1)",
        ));
    }
    Ok(())
}

fn destination_offset(di: &FdInfo, o: u64) -> Result<()> {
    if !di.seekable() {
        return Err(Error::invalid(format!(
            "a destination offset was given but the destination ({}) has no file position",
            kind_name(di.kind)
        )));
    }
    if di.append() {
        return Err(Error::invalid(
            "a destination offset cannot be honoured on an O_APPEND destination",
        ));
    }
    if o > i64::MAX as u64 {
        return Err(Error::invalid(
            "destination offset is larger than the largest file offset (2^63 - 1)",
        ));
    }
    Ok(())
}

/// One file on both sides: refuse overlapping ranges, as `cp` and `cat` do. A writer at or
/// ahead of the reader with no count feeds the reader its own output and the file grows until
/// the disk is full; a writer behind the reader overwrites bytes not yet read (or, for splice
/// and sendfile, pages still in flight).
fn same_file(
    src: BorrowedFd<'_>,
    dst: BorrowedFd<'_>,
    si: &FdInfo,
    di: &FdInfo,
    opts: &Options,
) -> Result<()> {
    let s = match opts.offset {
        Some(o) => o,
        None => sys::lseek(src, 0, libc::SEEK_CUR)?,
    };
    let d = match opts.dst_offset {
        Some(o) => o,
        None if di.append() => di.size,
        None => sys::lseek(dst, 0, libc::SEEK_CUR)?,
    };
    let overlap = if d >= s {
        opts.count.is_none_or(|c| d - s < c)
    } else {
        let len = opts
            .count
            .unwrap_or(u64::MAX)
            .min(si.size.saturating_sub(s));
        d.saturating_add(len) > s
    };
    if overlap {
        return Err(Error::invalid(format!(
            "the source and the destination are the same file and the ranges overlap \
             (reading from byte {s}, writing at byte {d}{})",
            match opts.count {
                Some(c) => format!(", {c} bytes"),
                None => " to the end of the file".into(),
            }
        )));
    }
    Ok(())
}

/// A short name of a descriptor kind for messages.
pub(crate) fn kind_name(kind: FdKind) -> &'static str {
    match kind {
        FdKind::Regular => "a regular file",
        FdKind::Block => "a block device",
        FdKind::Char => "a character device",
        FdKind::Pipe => "a pipe",
        FdKind::Stream(_) => "a stream socket",
        FdKind::Datagram => "a datagram socket",
        FdKind::Directory => "a directory",
        FdKind::Other => "not a file",
    }
}
