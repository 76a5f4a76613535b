//! `Options::dst_offset`: writing at an offset of the destination leaves its position alone.
#![allow(clippy::unwrap_used)]

use std::fs::{File, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::net::{TcpListener, TcpStream};

use zcopy_core::{ErrorCode, Method, Options, transfer};

fn temp(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("zcopy-dst-offset-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

fn pattern(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 31 + i / 977) as u8).collect()
}

#[test]
fn file_to_file_at_an_offset_keeps_the_destination_position() {
    let data = pattern(300_001);
    let src = temp("src");
    std::fs::write(&src, &data).unwrap();
    for method in [
        Method::Auto,
        Method::CopyFileRange,
        Method::Splice,
        Method::ReadWrite,
        Method::Mmap,
    ] {
        let out = temp(&format!("out-{method}"));
        let mut dst = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&out)
            .unwrap();
        dst.write_all(b"head").unwrap();
        let f = File::open(&src).unwrap();
        let opts = Options {
            method,
            dst_offset: Some(10),
            ..Options::default()
        };
        let r = transfer(&f, &dst, &opts).unwrap();
        assert_eq!(r.bytes, data.len() as u64, "{method}");
        assert_eq!(
            dst.stream_position().unwrap(),
            4,
            "{method}: destination position moved"
        );
        let got = std::fs::read(&out).unwrap();
        assert_eq!(&got[..4], b"head");
        assert_eq!(&got[4..10], &[0u8; 6]);
        assert_eq!(&got[10..], &data[..], "{method}");
    }
}

#[test]
fn sendfile_cannot_write_at_an_offset() {
    let src = temp("sf-src");
    std::fs::write(&src, b"abc").unwrap();
    let f = File::open(&src).unwrap();
    let dst = File::create(temp("sf-dst")).unwrap();
    let opts = Options {
        method: Method::Sendfile,
        dst_offset: Some(0),
        ..Options::default()
    };
    assert_eq!(
        transfer(&f, &dst, &opts).unwrap_err().code(),
        ErrorCode::Unsupported
    );
}

#[test]
fn socket_to_file_at_an_offset() {
    let data = pattern(2_000_000);
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let d2 = data.clone();
    let h = std::thread::spawn(move || TcpStream::connect(addr).unwrap().write_all(&d2).unwrap());
    let (sock, _) = l.accept().unwrap();
    let out = temp("sock-out");
    let mut dst = File::create(&out).unwrap();
    dst.seek(SeekFrom::Start(7)).unwrap();
    let r = transfer(
        &sock,
        &dst,
        &Options {
            dst_offset: Some(100),
            ..Options::default()
        },
    )
    .unwrap();
    h.join().unwrap();
    assert_eq!(r.bytes, data.len() as u64);
    assert_eq!(dst.stream_position().unwrap(), 7);
    assert_eq!(&std::fs::read(&out).unwrap()[100..], &data[..]);
}

#[test]
fn an_offset_on_a_pipe_destination_is_invalid() {
    let (_r, w) = std::io::pipe().unwrap();
    let src = temp("pipe-src");
    std::fs::write(&src, b"abc").unwrap();
    let f = File::open(&src).unwrap();
    let err = transfer(
        &f,
        &w,
        &Options {
            dst_offset: Some(0),
            ..Options::default()
        },
    )
    .unwrap_err();
    assert_eq!(err.code(), ErrorCode::InvalidArgument);
}
