//! Which method for which fd pair, and the fallback chain.
//!
//! | source \ destination | regular file | pipe | stream socket | char device |
//! |---|---|---|---|---|
//! | regular file | copy_file_range, sendfile, read_write | sendfile, splice, read_write | sendfile, splice, read_write | sendfile, splice, read_write |
//! | pipe / socket / char device | splice, read_write | splice, read_write | splice, read_write | splice, read_write |
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
    dst_offset: bool,
) -> std::result::Result<(), String> {
    let file_src = matches!(src.kind, FdKind::Regular | FdKind::Block);
    let append_file = dst.append() && matches!(dst.kind, FdKind::Regular | FdKind::Block);
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

/// The methods Auto tries for this pair, best first.
fn auto_chain(src: &FdInfo, dst: &FdInfo, dst_offset: bool) -> Vec<Method> {
    use Method::{CopyFileRange, ReadWrite, Sendfile, Splice};
    let candidates: &[Method] = match (src.kind, dst.kind) {
        // sendfile cannot write at an offset; splice can.
        (FdKind::Regular, FdKind::Regular) if dst_offset => &[CopyFileRange, Splice, ReadWrite],
        (FdKind::Regular, FdKind::Regular) => &[CopyFileRange, Sendfile, ReadWrite],
        (FdKind::Regular | FdKind::Block, _) => &[Sendfile, Splice, ReadWrite],
        _ => &[Splice, ReadWrite],
    };
    let usable = |m: &Method| applies(*m, src, dst, dst_offset).is_ok();
    candidates.iter().copied().filter(usable).collect()
}

/// The chain of methods to try, first to last, and the reason the requested method was
/// skipped when it does not apply but fallback is allowed.
pub(crate) fn chain(
    method: Method,
    fallback: bool,
    src: &FdInfo,
    dst: &FdInfo,
    dst_offset: bool,
) -> Result<(Vec<Method>, Option<String>)> {
    if method == Method::Auto {
        return Ok((auto_chain(src, dst, dst_offset), None));
    }
    match applies(method, src, dst, dst_offset) {
        Ok(()) if !fallback => Ok((vec![method], None)),
        Ok(()) => {
            let mut chain = vec![method];
            chain.extend(
                auto_chain(src, dst, dst_offset)
                    .into_iter()
                    .filter(|m| *m != method),
            );
            Ok((chain, None))
        }
        Err(why) if fallback => Ok((auto_chain(src, dst, dst_offset), Some(why))),
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

    #[test]
    fn auto_prefers_in_kernel_paths() {
        let file = info(FdKind::Regular, 0);
        let tcp = info(FdKind::Stream(SockFamily::Inet), 0);
        let pipe = info(FdKind::Pipe, 0);
        let chain = |s: &FdInfo, d: &FdInfo| {
            chain(Method::Auto, false, s, d, false)
                .expect("auto plans")
                .0
        };
        assert_eq!(
            chain(&file, &file),
            [Method::CopyFileRange, Method::Sendfile, Method::ReadWrite]
        );
        assert_eq!(
            chain(&file, &tcp),
            [Method::Sendfile, Method::Splice, Method::ReadWrite]
        );
        assert_eq!(chain(&tcp, &file), [Method::Splice, Method::ReadWrite]);
        assert_eq!(chain(&pipe, &tcp), [Method::Splice, Method::ReadWrite]);
    }

    #[test]
    fn append_destination_only_takes_plain_writes() {
        let file = info(FdKind::Regular, 0);
        let append = info(FdKind::Regular, libc::O_APPEND);
        let (auto, _) = chain(Method::Auto, false, &file, &append, false).expect("auto plans");
        assert_eq!(auto, [Method::ReadWrite]);
        let err =
            chain(Method::Sendfile, false, &file, &append, false).expect_err("sendfile refuses");
        assert_eq!(err.code(), crate::ErrorCode::Unsupported);
        let (fb, why) =
            chain(Method::Sendfile, true, &file, &append, false).expect("fallback plans");
        assert_eq!(fb, [Method::ReadWrite]);
        assert!(why.is_some());
    }

    #[test]
    fn zerocopy_needs_tcp() {
        let file = info(FdKind::Regular, 0);
        let unix = info(FdKind::Stream(SockFamily::Unix), 0);
        assert!(applies(Method::MsgZerocopy, &file, &unix, false).is_err());
        let tcp6 = info(FdKind::Stream(SockFamily::Inet6), 0);
        assert!(applies(Method::MsgZerocopy, &file, &tcp6, false).is_ok());
    }

    #[test]
    fn destination_offset_excludes_sendfile() {
        let file = info(FdKind::Regular, 0);
        let (auto, _) = chain(Method::Auto, false, &file, &file, true).expect("auto plans");
        assert_eq!(
            auto,
            [Method::CopyFileRange, Method::Splice, Method::ReadWrite]
        );
    }
}
