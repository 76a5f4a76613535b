//! Which method for which fd pair, and the fallback chain.
//!
//! | source \ destination | regular file | pipe | stream socket | char device |
//! |---|---|---|---|---|
//! | regular file | copy_file_range, sendfile, read_write | sendfile, splice, read_write | sendfile, splice, read_write (splice first from 4 MiB) | sendfile, splice, read_write |
//! | pipe / socket / char device | splice, read_write | splice, read_write | splice, read_write (a socket source with a deadline: read_write) | splice, read_write |
//!
//! Counted Auto transfers under [`SPLICE_AT_LEAST`] never get here: they are one `sendfile`
//! call (see `fast.rs`). A datagram socket destination takes only `sendfile` (one call, one
//! datagram).
//!
//! `mmap` and `msg_zerocopy` are never picked by Auto: `mmap` + `write` costs the same copy as
//! `read`/`write` minus one syscall but faults pages in one by one, and MSG_ZEROCOPY only pays
//! off for large sends on a NIC that does scatter-gather (on loopback the kernel copies anyway).

use crate::error::{Error, Result};
use crate::fd::{FdInfo, FdKind, SockFamily};
use crate::method::Method;

/// Why `method` cannot move bytes from `src` to `dst`, or `Ok` if it can.
pub(crate) fn applies(
    method: Method,
    src: &FdInfo,
    dst: &FdInfo,
    ask: Ask,
) -> std::result::Result<(), String> {
    let dst_offset = ask.dst_offset;
    let file_src = matches!(src.kind, FdKind::Regular | FdKind::Block);
    let append_file = dst.append() && matches!(dst.kind, FdKind::Regular | FdKind::Block);
    if dst.kind == FdKind::Datagram && method != Method::Sendfile {
        return Err(format!(
            "{method} cannot write to a datagram socket: only one sendfile call makes exactly one datagram"
        ));
    }
    match method {
        Method::Auto | Method::ReadWrite => Ok(()),
        Method::Mmap if !matches!(src.kind, FdKind::Regular) => {
            Err("mmap needs a regular file as the source".into())
        }
        Method::Mmap => Ok(()),
        Method::Sendfile if !file_src => {
            Err("sendfile needs a regular file or block device as the source".into())
        }
        Method::Sendfile if append_file => Err("sendfile cannot write to an O_APPEND file".into()),
        Method::Sendfile if dst_offset => {
            Err("sendfile always writes at the destination's position".into())
        }
        Method::Sendfile => Ok(()),
        Method::Splice if append_file => Err("splice cannot write to an O_APPEND file".into()),
        // Through the internal pipe, bytes taken from a socket that the destination has not
        // taken when a deadline (or timeout 0) ends the call could be neither delivered nor
        // given back. read_write peeks instead.
        Method::Splice if ask.bounded && holds_stream_bytes(src, dst) => Err(
            "splice from a socket to a socket or device cannot end at a deadline (or timeout 0) \
             without losing the bytes in its pipe: use read_write or Auto, which peek"
                .into(),
        ),
        Method::Splice => Ok(()),
        Method::CopyFileRange if !(src.kind == FdKind::Regular && dst.kind == FdKind::Regular) => {
            Err("copy_file_range needs regular files on both sides".into())
        }
        Method::CopyFileRange if append_file => {
            Err("copy_file_range cannot write to an O_APPEND file".into())
        }
        Method::CopyFileRange => Ok(()),
        Method::MsgZerocopy if src.kind != FdKind::Regular => {
            Err("msg_zerocopy needs a regular file as the source".into())
        }
        Method::MsgZerocopy if dst.kind == FdKind::Stream(SockFamily::Unix) => Err(
            "msg_zerocopy needs a TCP socket as the destination (Unix sockets cannot do it)".into(),
        ),
        Method::MsgZerocopy if !dst.is_tcp() => {
            Err("msg_zerocopy needs a TCP socket as the destination".into())
        }
        Method::MsgZerocopy => Ok(()),
    }
}

/// A socket source and a destination that can block, not a pipe: splice goes through the
/// engine's pipe, which may hold bytes the destination has not taken.
fn holds_stream_bytes(src: &FdInfo, dst: &FdInfo) -> bool {
    matches!(src.kind, FdKind::Stream(_)) && matches!(dst.kind, FdKind::Stream(_) | FdKind::Char)
}

/// Transfers at least this large from a file to a stream socket go through splice first:
/// `sendfile` moves data through the kernel's per-task pipe of 16 pages, so TCP gets 64 KiB per
/// send, while splice through a pooled pipe of `pipe-max-size` (1 MiB) hands it 1 MiB at a
/// time: a few percent more GB/s and less CPU per GB on loopback (`zcopy bench --scenario
/// file_tcp`). Smaller transfers keep sendfile's single syscall.
pub(crate) const SPLICE_AT_LEAST: u64 = 4 << 20;

/// What the caller asked for, beyond the two descriptors.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Ask {
    /// The requested method.
    pub method: Method,
    /// Whether an explicit method may fall back.
    pub fallback: bool,
    /// Writing at an explicit destination offset.
    pub dst_offset: bool,
    /// At least [`SPLICE_AT_LEAST`] bytes are expected.
    pub bulk: bool,
    /// The call has a deadline or a zero timeout, so it may return before the count.
    pub bounded: bool,
}

/// The methods Auto tries for this pair, best first.
fn auto_chain(src: &FdInfo, dst: &FdInfo, ask: Ask) -> Vec<Method> {
    use Method::{CopyFileRange, ReadWrite, Sendfile, Splice};
    let candidates: &[Method] = match (src.kind, dst.kind) {
        // sendfile cannot write at an offset; splice can.
        (FdKind::Regular, FdKind::Regular) if ask.dst_offset => &[CopyFileRange, Splice, ReadWrite],
        (FdKind::Regular, FdKind::Regular) => &[CopyFileRange, Sendfile, ReadWrite],
        (FdKind::Regular | FdKind::Block, FdKind::Datagram) => &[Sendfile],
        (FdKind::Regular | FdKind::Block, FdKind::Stream(_)) if ask.bulk => {
            &[Splice, Sendfile, ReadWrite]
        }
        (FdKind::Regular | FdKind::Block, _) => &[Sendfile, Splice, ReadWrite],
        // With a deadline, splice from a socket to a socket does not apply (see `applies`):
        // read_write peeks and consumes only what was written.
        _ => &[Splice, ReadWrite],
    };
    let usable = |m: &Method| applies(*m, src, dst, ask).is_ok();
    candidates.iter().copied().filter(usable).collect()
}

/// The chain of methods to try, first to last, and the reason the requested method was
/// skipped when it does not apply but fallback is allowed.
pub(crate) fn chain(src: &FdInfo, dst: &FdInfo, ask: Ask) -> Result<(Vec<Method>, Option<String>)> {
    let method = ask.method;
    if method == Method::Auto {
        return Ok((auto_chain(src, dst, ask), None));
    }
    match applies(method, src, dst, ask) {
        Ok(()) if !ask.fallback => Ok((vec![method], None)),
        Ok(()) => {
            let mut chain = vec![method];
            chain.extend(
                auto_chain(src, dst, ask)
                    .into_iter()
                    .filter(|m| *m != method),
            );
            Ok((chain, None))
        }
        Err(why) if ask.fallback => Ok((auto_chain(src, dst, ask), Some(why))),
        Err(why) => Err(Error::unsupported(why)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fd::SockFamily;

    fn info(kind: FdKind, flags: i32) -> FdInfo {
        FdInfo {
            kind,
            size: 0,
            dev_ino: (0, 0),
            flags: flags | libc::O_RDWR,
        }
    }

    fn ask(method: Method, fallback: bool) -> Ask {
        Ask {
            method,
            fallback,
            dst_offset: false,
            bulk: false,
            bounded: false,
        }
    }

    #[test]
    fn auto_prefers_in_kernel_paths() {
        let file = info(FdKind::Regular, 0);
        let tcp = info(FdKind::Stream(SockFamily::Inet), 0);
        let pipe = info(FdKind::Pipe, 0);
        let plan = |s: &FdInfo, d: &FdInfo| chain(s, d, ask(Method::Auto, false)).expect("plans").0;
        assert_eq!(
            plan(&file, &file),
            [Method::CopyFileRange, Method::Sendfile, Method::ReadWrite]
        );
        assert_eq!(
            plan(&file, &tcp),
            [Method::Sendfile, Method::Splice, Method::ReadWrite]
        );
        assert_eq!(plan(&tcp, &file), [Method::Splice, Method::ReadWrite]);
        assert_eq!(plan(&pipe, &tcp), [Method::Splice, Method::ReadWrite]);
    }

    #[test]
    fn bulk_file_to_socket_splices_first() {
        let file = info(FdKind::Regular, 0);
        let tcp = info(FdKind::Stream(SockFamily::Inet), 0);
        let pipe = info(FdKind::Pipe, 0);
        let bulk = Ask {
            bulk: true,
            ..ask(Method::Auto, false)
        };
        assert_eq!(
            chain(&file, &tcp, bulk).expect("plans").0,
            [Method::Splice, Method::Sendfile, Method::ReadWrite]
        );
        assert_eq!(
            chain(&file, &pipe, bulk).expect("plans").0,
            [Method::Sendfile, Method::Splice, Method::ReadWrite]
        );
    }

    #[test]
    fn append_destination_only_takes_plain_writes() {
        let file = info(FdKind::Regular, 0);
        let append = info(FdKind::Regular, libc::O_APPEND);
        let (auto, _) = chain(&file, &append, ask(Method::Auto, false)).expect("auto plans");
        assert_eq!(auto, [Method::ReadWrite]);
        let err =
            chain(&file, &append, ask(Method::Sendfile, false)).expect_err("sendfile refuses");
        assert_eq!(err.code(), crate::ErrorCode::Unsupported);
        let (fb, why) = chain(&file, &append, ask(Method::Sendfile, true)).expect("fallback plans");
        assert_eq!(fb, [Method::ReadWrite]);
        assert!(why.is_some());
    }

    #[test]
    fn zerocopy_needs_tcp() {
        let file = info(FdKind::Regular, 0);
        let unix = info(FdKind::Stream(SockFamily::Unix), 0);
        assert!(applies(Method::MsgZerocopy, &file, &unix, ask(Method::Auto, false)).is_err());
        let tcp6 = info(FdKind::Stream(SockFamily::Inet6), 0);
        assert!(applies(Method::MsgZerocopy, &file, &tcp6, ask(Method::Auto, false)).is_ok());
    }

    #[test]
    fn destination_offset_excludes_sendfile() {
        let file = info(FdKind::Regular, 0);
        let with_offset = Ask {
            dst_offset: true,
            ..ask(Method::Auto, false)
        };
        let (auto, _) = chain(&file, &file, with_offset).expect("auto plans");
        assert_eq!(
            auto,
            [Method::CopyFileRange, Method::Splice, Method::ReadWrite]
        );
    }
}
