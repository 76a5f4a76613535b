//! `capabilities()` and `classify()` on real descriptors.
#![allow(clippy::unwrap_used)]

mod common;

use std::fs::OpenOptions;
use std::net::{TcpListener, TcpStream};
use std::os::fd::{AsFd, FromRawFd, OwnedFd};
use std::thread;

use common::*;
use zcopy_core::fd::{Access, FdKind, SockFamily};
use zcopy_core::{Method, capabilities, classify};

#[test]
fn capabilities_lists_every_explicit_method_on_this_kernel() {
    let caps = capabilities();
    for m in Method::EXPLICIT {
        assert!(
            caps.supports(m),
            "{m} should be supported on this kernel (caps bits {:#b})",
            caps.bits()
        );
        assert_ne!(caps.bits() & (1 << m as u32), 0, "bit for {m}");
    }
    assert!(caps.supports(Method::Auto), "Auto always works");
    assert_eq!(caps.bits() & 1, 1, "Auto's bit 0 is always set");
    assert_eq!(caps.methods(), Method::EXPLICIT.to_vec());
    assert_eq!(caps.bits(), 0b111_1111);
}

#[test]
fn capabilities_is_cached_and_the_same_from_every_thread() {
    let first = capabilities();
    let handles: Vec<_> = (0..8).map(|_| thread::spawn(capabilities)).collect();
    for h in handles {
        assert_eq!(h.join().expect("thread"), first);
    }
    assert_eq!(capabilities(), first);
}

#[test]
fn method_names_and_numbers_are_stable() {
    let expected = [
        (Method::Auto, 0, "auto"),
        (Method::ReadWrite, 1, "read_write"),
        (Method::Mmap, 2, "mmap"),
        (Method::Sendfile, 3, "sendfile"),
        (Method::Splice, 4, "splice"),
        (Method::CopyFileRange, 5, "copy_file_range"),
        (Method::MsgZerocopy, 6, "msg_zerocopy"),
    ];
    for (m, n, name) in expected {
        assert_eq!(m as i32, n);
        assert_eq!(m.name(), name);
        assert_eq!(Method::from_i32(n), Some(m));
        assert_eq!(Method::from_name(name), Some(m));
        assert_eq!(name.parse::<Method>().expect("parse"), m);
    }
    assert_eq!(Method::from_i32(7), None);
    assert_eq!(Method::from_i32(-1), None);
    let err = "sendfile2".parse::<Method>().expect_err("unknown name");
    assert_eq!(err.code(), zcopy_core::ErrorCode::InvalidArgument);
}

#[test]
fn error_codes_are_stable() {
    use zcopy_core::ErrorCode;
    let expected = [
        (ErrorCode::Ok, 0, "OK"),
        (ErrorCode::Os, 1, "OS"),
        (ErrorCode::Unsupported, 2, "UNSUPPORTED"),
        (ErrorCode::InvalidArgument, 3, "INVALID_ARGUMENT"),
        (ErrorCode::WouldBlock, 4, "WOULD_BLOCK"),
        (ErrorCode::TimedOut, 5, "TIMED_OUT"),
        (ErrorCode::NullParameter, 6, "NULL_PARAMETER"),
        (ErrorCode::Panic, 7, "PANIC"),
    ];
    for (c, n, name) in expected {
        assert_eq!(c as i32, n);
        assert_eq!(c.name(), name);
        assert_eq!(ErrorCode::from_i32(n), Some(c));
    }
    assert_eq!(ErrorCode::from_i32(8), None);
}

#[test]
fn classify_regular_files_with_size_access_and_flags() {
    let dir = TempDir::new("classify");
    let ro = dir.source("a", &pattern(12345, 1));
    let info = classify(ro.as_fd()).expect("classify");
    assert_eq!(info.kind, FdKind::Regular);
    assert_eq!(info.size, 12345);
    assert_eq!(info.access(), Access::Read);
    assert!(info.seekable());
    assert!(!info.may_block());
    assert!(!info.append());
    assert!(!info.nonblocking());

    let wo = dir.sink("b");
    let info_w = classify(wo.as_fd()).expect("classify");
    assert_eq!(info_w.access(), Access::Write);
    assert_ne!(
        info_w.dev_ino, info.dev_ino,
        "different files have different identities"
    );

    let rw = OpenOptions::new()
        .read(true)
        .write(true)
        .open(dir.join("a"))
        .expect("open rw");
    let info_rw = classify(rw.as_fd()).expect("classify");
    assert_eq!(info_rw.access(), Access::ReadWrite);
    assert_eq!(info_rw.dev_ino, info.dev_ino, "same file, same identity");

    let ap = OpenOptions::new()
        .append(true)
        .open(dir.join("a"))
        .expect("open append");
    let info_ap = classify(ap.as_fd()).expect("classify");
    assert!(info_ap.append());
    assert_eq!(info_ap.access(), Access::Write);
}

#[test]
fn classify_o_path_descriptor_has_no_access() {
    let dir = TempDir::new("classify-opath");
    drop(dir.source("a", b"x"));
    let path =
        std::ffi::CString::new(dir.join("a").into_os_string().into_encoded_bytes()).expect("cstr");
    // SAFETY: valid NUL-terminated path; the returned fd is checked and owned below.
    let fd = unsafe { libc::open(path.as_ptr(), libc::O_PATH | libc::O_CLOEXEC) };
    assert!(fd >= 0, "open O_PATH: {}", std::io::Error::last_os_error());
    // SAFETY: fresh descriptor nobody else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let info = classify(fd.as_fd()).expect("classify");
    assert_eq!(info.access(), Access::None);
}

#[test]
fn classify_pipes_sockets_devices_and_directories() {
    let (r, w) = pipe();
    for f in [&r, &w] {
        let info = classify(f.as_fd()).expect("classify pipe");
        assert_eq!(info.kind, FdKind::Pipe);
        assert!(!info.seekable());
        assert!(info.may_block());
    }
    assert_eq!(classify(r.as_fd()).unwrap().access(), Access::Read);
    assert_eq!(classify(w.as_fd()).unwrap().access(), Access::Write);

    let (c, s) = tcp_pair();
    for sock in [&c, &s] {
        let info = classify(sock.as_fd()).expect("classify tcp");
        assert_eq!(info.kind, FdKind::Stream(SockFamily::Inet));
        assert!(info.is_tcp());
        assert!(info.is_stream());
        assert_eq!(info.access(), Access::ReadWrite);
    }

    if let Ok(l6) = TcpListener::bind("[::1]:0") {
        let c6 = TcpStream::connect(l6.local_addr().unwrap()).expect("connect v6");
        let info = classify(c6.as_fd()).expect("classify tcp6");
        assert_eq!(info.kind, FdKind::Stream(SockFamily::Inet6));
        assert!(info.is_tcp());
    }

    let (a, _b) = unix_pair();
    let info = classify(a.as_fd()).expect("classify unix");
    assert_eq!(info.kind, FdKind::Stream(SockFamily::Unix));
    assert!(!info.is_tcp());
    assert!(info.is_stream());

    let (u, _u2) = udp_pair();
    assert_eq!(classify(u.as_fd()).unwrap().kind, FdKind::Datagram);

    assert_eq!(classify(dev_null().as_fd()).unwrap().kind, FdKind::Char);
    assert_eq!(classify(dev_zero().as_fd()).unwrap().kind, FdKind::Char);

    let dir = TempDir::new("classify-dir");
    let d = std::fs::File::open(dir.path()).expect("open dir");
    assert_eq!(classify(d.as_fd()).unwrap().kind, FdKind::Directory);

    // SAFETY: no pointers; the returned fd is checked and owned below.
    let efd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC) };
    assert!(efd >= 0);
    // SAFETY: fresh descriptor nobody else owns.
    let efd = unsafe { OwnedFd::from_raw_fd(efd) };
    assert_eq!(classify(efd.as_fd()).unwrap().kind, FdKind::Other);
}

#[test]
fn classify_sees_nonblocking_flag_and_procfs_size_zero() {
    let (c, _s) = tcp_pair();
    c.set_nonblocking(true).unwrap();
    assert!(classify(c.as_fd()).unwrap().nonblocking());
    c.set_nonblocking(false).unwrap();
    assert!(!classify(c.as_fd()).unwrap().nonblocking());

    let status = std::fs::File::open("/proc/self/status").expect("open procfs");
    let info = classify(status.as_fd()).unwrap();
    assert_eq!(info.kind, FdKind::Regular);
    assert_eq!(info.size, 0, "procfs files report size 0");
}
