//! Datagram socket destinations: counted transfers from a file become exactly one datagram
//! (one sendfile call); everything else is Unsupported, never a stream cut at random.
#![allow(clippy::unwrap_used)]

use std::fs::File;
use std::net::UdpSocket;

use zcopy_core::{ErrorCode, Method, Options, transfer};

fn pair() -> (UdpSocket, UdpSocket) {
    let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
    let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
    tx.connect(rx.local_addr().unwrap()).unwrap();
    rx.set_nonblocking(true).unwrap();
    (tx, rx)
}

fn source(name: &str, data: &[u8]) -> File {
    let path = std::env::temp_dir().join(format!("zcopy-dgram-{}-{name}", std::process::id()));
    std::fs::write(&path, data).unwrap();
    let f = File::open(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    f
}

fn datagrams(rx: &UdpSocket) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut buf = vec![0u8; 65536];
    while let Ok(n) = rx.recv(&mut buf) {
        out.push(buf[..n].to_vec());
    }
    out
}

#[test]
fn a_counted_transfer_from_a_file_is_one_datagram() {
    let data: Vec<u8> = (0..20_000u32).map(|i| (i % 251) as u8).collect();
    let f = source("one", &data);
    for method in [Method::Auto, Method::Sendfile] {
        let (tx, rx) = pair();
        let opts = Options {
            method,
            offset: Some(100),
            count: Some(9000),
            ..Options::default()
        };
        let r = transfer(&f, &tx, &opts).unwrap();
        assert_eq!((r.bytes, r.method), (9000, Method::Sendfile), "{method}");
        assert_eq!(datagrams(&rx), vec![data[100..9100].to_vec()], "{method}");
    }
}

#[test]
fn uncounted_or_other_methods_are_unsupported_and_send_nothing() {
    let f = source("none", b"hello datagram");
    let (tx, rx) = pair();
    let e = transfer(&f, &tx, &Options::default()).unwrap_err();
    assert_eq!(e.code(), ErrorCode::Unsupported, "{e}");
    for method in [
        Method::ReadWrite,
        Method::Mmap,
        Method::Splice,
        Method::CopyFileRange,
        Method::MsgZerocopy,
    ] {
        let opts = Options {
            method,
            count: Some(5),
            ..Options::default()
        };
        let e = transfer(&f, &tx, &opts).unwrap_err();
        assert_eq!(e.code(), ErrorCode::Unsupported, "{method}: {e}");
    }
    assert!(datagrams(&rx).is_empty());
    // With fallback an explicit method gives way to the one sendfile call.
    let opts = Options {
        method: Method::Splice,
        count: Some(5),
        fallback: true,
        ..Options::default()
    };
    let r = transfer(&f, &tx, &opts).unwrap();
    assert_eq!(r.method, Method::Sendfile);
    assert_eq!(datagrams(&rx), vec![b"hello".to_vec()]);
}

#[test]
fn a_count_larger_than_a_datagram_is_refused_by_the_kernel() {
    let f = source("big", &vec![7u8; 100_000]);
    let (tx, rx) = pair();
    let e = transfer(
        &f,
        &tx,
        &Options {
            count: Some(100_000),
            ..Options::default()
        },
    )
    .unwrap_err();
    assert_eq!(
        (e.code(), e.errno(), e.bytes()),
        (ErrorCode::Os, Some(libc::EMSGSIZE), 0),
        "{e}"
    );
    assert!(datagrams(&rx).is_empty());
}
