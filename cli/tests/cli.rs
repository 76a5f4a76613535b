//! End-to-end tests of the `zcopy` binary: probe, copy (every method, offsets, stdin/stdout),
//! send/recv over loopback, relay, and `bench --json`. Every child runs under a time limit.

mod support;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::time::Duration;

use support::{
    Json, TempDir, data, listening_addr, parse_json, run_limited, wait_limited, write_file, zcopy,
};

const LIMIT: Duration = Duration::from_secs(60);
/// Odd on purpose: not a multiple of a page, a pipe or a buffer.
const SIZE: usize = (1 << 20) + 4097;

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn probe_lists_every_method() {
    let mut cmd = zcopy();
    cmd.arg("probe");
    let out = run_limited(cmd, LIMIT, "zcopy probe");
    assert!(out.status.success(), "probe failed: {}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    for m in [
        "auto",
        "read_write",
        "mmap",
        "sendfile",
        "splice",
        "copy_file_range",
        "msg_zerocopy",
    ] {
        let line = text
            .lines()
            .find(|l| l.starts_with(m))
            .unwrap_or_else(|| panic!("no line for {m} in:\n{text}"));
        assert!(line.contains("yes") || line.contains("no"), "{line}");
    }
    assert!(
        text.lines()
            .any(|l| l.starts_with("read_write") && l.contains("yes")),
        "{text}"
    );
}

#[test]
fn copy_file_to_file_with_every_method() {
    let dir = TempDir::new("copy");
    let src = dir.path("src");
    let bytes = data(SIZE, 1);
    write_file(&src, &bytes);
    for m in [
        "auto",
        "read_write",
        "mmap",
        "sendfile",
        "splice",
        "copy_file_range",
    ] {
        let dst = dir.path(&format!("dst-{m}"));
        let mut cmd = zcopy();
        cmd.arg("copy").arg(&src).arg(&dst).args(["--method", m]);
        let out = run_limited(cmd, LIMIT, "zcopy copy");
        assert!(
            out.status.success(),
            "copy --method {m} failed: {}",
            stderr(&out)
        );
        assert!(
            std::fs::read(&dst).expect("reading the copy") == bytes,
            "copy --method {m} differs"
        );
        let err = stderr(&out);
        assert!(
            err.contains(&format!("copied {SIZE} bytes")),
            "summary of {m}: {err}"
        );
        assert!(err.contains("method "), "summary of {m}: {err}");
    }
}

#[test]
fn copy_with_a_method_that_does_not_apply() {
    let dir = TempDir::new("copy-na");
    let src = dir.path("src");
    let bytes = data(SIZE, 2);
    write_file(&src, &bytes);
    let dst = dir.path("dst");
    let mut cmd = zcopy();
    cmd.arg("copy")
        .arg(&src)
        .arg(&dst)
        .args(["--method", "msg_zerocopy"]);
    let out = run_limited(cmd, LIMIT, "zcopy copy msg_zerocopy");
    assert!(
        !out.status.success(),
        "msg_zerocopy into a file must fail without --fallback"
    );
    assert!(stderr(&out).contains("unsupported"), "{}", stderr(&out));

    let mut cmd = zcopy();
    cmd.arg("copy")
        .arg(&src)
        .arg(&dst)
        .args(["--method", "msg_zerocopy", "--fallback"]);
    let out = run_limited(cmd, LIMIT, "zcopy copy msg_zerocopy --fallback");
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(std::fs::read(&dst).expect("reading the copy") == bytes);
    assert!(stderr(&out).contains("fell back"), "{}", stderr(&out));
}

#[test]
fn copy_offset_and_count() {
    let dir = TempDir::new("copy-range");
    let src = dir.path("src");
    let bytes = data(SIZE, 3);
    write_file(&src, &bytes);
    for (offset, count) in [
        (4095usize, 70000usize),
        (0, 1),
        (SIZE - 10, 1000),
        (SIZE + 5, 10),
    ] {
        let dst = dir.path("dst");
        let mut cmd = zcopy();
        cmd.arg("copy").arg(&src).arg(&dst).args([
            "--offset",
            &offset.to_string(),
            "--count",
            &count.to_string(),
        ]);
        let out = run_limited(cmd, LIMIT, "zcopy copy --offset --count");
        assert!(
            out.status.success(),
            "offset {offset} count {count}: {}",
            stderr(&out)
        );
        let start = offset.min(SIZE);
        let want = &bytes[start..(start + count).min(SIZE)];
        assert!(
            std::fs::read(&dst).expect("reading the copy") == want,
            "offset {offset} count {count}"
        );
    }
}

#[test]
fn copy_stdin_to_stdout_through_pipes() {
    let bytes = data(SIZE, 4);
    let mut child = zcopy()
        .args(["copy", "-", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawning zcopy");
    let mut stdin = child.stdin.take().expect("stdin is piped");
    let input = bytes.clone();
    let writer = std::thread::spawn(move || {
        stdin.write_all(&input).expect("feeding zcopy");
    });
    let mut stdout = child.stdout.take().expect("stdout is piped");
    let reader = std::thread::spawn(move || {
        let mut v = Vec::new();
        stdout.read_to_end(&mut v).expect("reading zcopy's stdout");
        v
    });
    let out = wait_limited(child, LIMIT, "zcopy copy - -");
    writer.join().expect("the writer thread");
    let got = reader.join().expect("the reader thread");
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        got == bytes,
        "stdin -> stdout lost or changed bytes ({} of {})",
        got.len(),
        bytes.len()
    );
}

#[test]
fn copy_file_to_stdout_and_stdin_file_to_file() {
    let dir = TempDir::new("copy-std");
    let src = dir.path("src");
    let bytes = data(SIZE, 5);
    write_file(&src, &bytes);

    let mut cmd = zcopy();
    cmd.arg("copy").arg(&src).arg("-");
    let out = run_limited(cmd, LIMIT, "zcopy copy FILE -");
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(out.stdout == bytes, "file -> stdout differs");

    // stdin redirected from a file is a regular file: the file paths apply.
    let dst = dir.path("dst");
    let child = zcopy()
        .arg("copy")
        .arg("-")
        .arg(&dst)
        .stdin(std::fs::File::open(&src).expect("opening the source"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawning zcopy");
    let out = wait_limited(child, LIMIT, "zcopy copy - FILE");
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        std::fs::read(&dst).expect("reading the copy") == bytes,
        "stdin file -> file differs"
    );
}

#[test]
fn copy_refuses_to_truncate_its_source_and_writes_to_devices() {
    let dir = TempDir::new("copy-same");
    let src = dir.path("src");
    let bytes = data(SIZE, 8);
    write_file(&src, &bytes);
    let mut cmd = zcopy();
    cmd.arg("copy").arg(&src).arg(&src);
    let out = run_limited(cmd, LIMIT, "zcopy copy f f");
    assert!(!out.status.success());
    assert!(stderr(&out).contains("same file"), "{}", stderr(&out));
    assert!(
        std::fs::read(&src).expect("reading the source") == bytes,
        "the source was damaged"
    );

    let mut cmd = zcopy();
    cmd.arg("copy").arg(&src).arg("/dev/null");
    let out = run_limited(cmd, LIMIT, "zcopy copy f /dev/null");
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&format!("copied {SIZE} bytes")),
        "{}",
        stderr(&out)
    );
}

#[test]
fn copy_reports_a_missing_source() {
    let dir = TempDir::new("copy-missing");
    let mut cmd = zcopy();
    cmd.arg("copy").arg(dir.path("nope")).arg(dir.path("dst"));
    let out = run_limited(cmd, LIMIT, "zcopy copy missing");
    assert!(!out.status.success());
    assert!(stderr(&out).contains("nope"), "{}", stderr(&out));
}

#[test]
fn send_and_recv_over_loopback() {
    let dir = TempDir::new("net");
    let src = dir.path("src");
    let bytes = data(SIZE, 6);
    write_file(&src, &bytes);
    for method in [
        None,
        Some("read_write"),
        Some("splice"),
        Some("msg_zerocopy"),
    ] {
        let dst = dir.path("dst");
        let mut recv = zcopy();
        recv.args(["recv", "127.0.0.1:0"]).arg(&dst);
        let mut recv = recv
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawning zcopy recv");
        let (addr, rest) = listening_addr(recv.stderr.take().expect("stderr is piped"));
        let mut send = zcopy();
        send.arg("send").arg(&src).arg(&addr);
        if let Some(m) = method {
            send.args(["--method", m]);
        }
        let sent = run_limited(send, LIMIT, "zcopy send");
        let received = wait_limited(recv, LIMIT, "zcopy recv");
        let recv_err = rest.join().expect("the stderr reader");
        assert!(sent.status.success(), "send {method:?}: {}", stderr(&sent));
        assert!(received.status.success(), "recv: {recv_err}");
        assert!(
            recv_err.contains(&format!("received {SIZE} bytes")),
            "{recv_err}"
        );
        assert!(
            recv_err.contains("method splice"),
            "recv writes with splice: {recv_err}"
        );
        assert!(
            std::fs::read(&dst).expect("reading what arrived") == bytes,
            "send {method:?}: bytes differ"
        );
    }
}

/// An upstream that echoes everything back, then closes its write side on EOF.
fn echo_server() -> (String, std::thread::JoinHandle<u64>) {
    let l = TcpListener::bind("127.0.0.1:0").expect("binding the echo server");
    let addr = l.local_addr().expect("its address").to_string();
    let h = std::thread::spawn(move || {
        let (mut s, _) = l.accept().expect("accepting the relay's connection");
        let mut buf = vec![0u8; 65536];
        let mut total = 0u64;
        loop {
            let n = s.read(&mut buf).expect("reading from the relay");
            if n == 0 {
                break;
            }
            s.write_all(&buf[..n]).expect("echoing");
            total += n as u64;
        }
        s.shutdown(Shutdown::Write).expect("half-closing");
        total
    });
    (addr, h)
}

#[test]
fn relay_both_directions_and_half_close() {
    let (upstream, echo) = echo_server();
    let mut relay = zcopy();
    relay.args(["relay", "127.0.0.1:0", &upstream, "--max-conns", "1"]);
    let mut relay = relay
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawning zcopy relay");
    let (addr, rest) = listening_addr(relay.stderr.take().expect("stderr is piped"));

    let bytes = data(SIZE, 7);
    let mut client = TcpStream::connect(&addr).expect("connecting to the relay");
    client
        .set_read_timeout(Some(LIMIT))
        .expect("setting a read timeout");
    let mut reader = client.try_clone().expect("cloning the client socket");
    let back = std::thread::spawn(move || {
        let mut v = Vec::new();
        reader
            .read_to_end(&mut v)
            .expect("reading the echo through the relay");
        v
    });
    client.write_all(&bytes).expect("writing through the relay");
    client
        .shutdown(Shutdown::Write)
        .expect("half-closing the client");
    let got = back.join().expect("the reader thread");
    assert_eq!(echo.join().expect("the echo server"), SIZE as u64);
    assert!(
        got == bytes,
        "the echo through the relay differs ({} of {} bytes)",
        got.len(),
        bytes.len()
    );

    let out = wait_limited(relay, LIMIT, "zcopy relay --max-conns 1");
    let log = rest.join().expect("the stderr reader");
    assert!(out.status.success(), "{log}");
    assert!(
        log.contains(&format!("{SIZE} bytes up, {SIZE} bytes down")),
        "{log}"
    );
}

#[test]
fn bench_small_run_writes_json() {
    let dir = TempDir::new("bench");
    let json = dir.path("bench.json");
    let mut cmd = zcopy();
    cmd.args([
        "bench",
        "--size",
        "8M",
        "--rounds",
        "1",
        "--min-time",
        "0",
        "--json",
    ])
    .arg(&json);
    let out = run_limited(
        cmd,
        Duration::from_secs(120),
        "zcopy bench --size 8M --rounds 1",
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let table = String::from_utf8_lossy(&out.stdout);
    for needle in [
        "file -> file",
        "file -> tcp",
        "tcp -> tcp",
        "file -> pipe",
        "libc sendfile loop",
        "auto, drop_behind",
        "auto, direct",
        "response: 200 B header + 4 KiB file -> tcp",
        "send_parts",
        "write + sendfile (libc)",
        "findings:",
        "fastest: ",
        "cache policies on a cached file: drop_behind ",
        "TCP segments and ",
        "the responses per second of write + sendfile",
    ] {
        assert!(
            table.contains(needle),
            "no {needle:?} in the table:\n{table}"
        );
    }

    let doc = parse_json(&std::fs::read_to_string(&json).expect("reading the JSON"));
    assert_eq!(
        doc.get("size").and_then(Json::as_f64),
        Some(8.0 * 1024.0 * 1024.0)
    );
    assert_eq!(doc.get("rounds").and_then(Json::as_f64), Some(1.0));
    let rows = doc
        .get("rows")
        .and_then(Json::as_arr)
        .expect("a rows array");
    let row = |sc: &str, m: &str| {
        rows.iter()
            .find(|r| {
                r.get("scenario").and_then(Json::as_str) == Some(sc)
                    && r.get("method").and_then(Json::as_str) == Some(m)
            })
            .unwrap_or_else(|| panic!("no row {sc}/{m}"))
    };
    for sc in [
        "file_file",
        "file_tcp",
        "tcp_tcp",
        "file_pipe",
        "small_4k",
        "small_64k",
    ] {
        for m in ["rw64k", "read_write", "auto"] {
            let r = row(sc, m);
            assert_eq!(
                r.get("status").and_then(Json::as_str),
                Some("measured"),
                "{sc}/{m}: {r:?}"
            );
            assert!(
                r.get("gbps")
                    .and_then(Json::as_f64)
                    .is_some_and(|g| g > 0.0),
                "{sc}/{m}: {r:?}"
            );
            assert!(
                r.get("syscalls_per_gb")
                    .and_then(Json::as_f64)
                    .is_some_and(|g| g > 0.0),
                "{sc}/{m}: {r:?}"
            );
            let samples = r.get("samples").and_then(Json::as_arr).expect("samples");
            assert_eq!(samples.len(), 1, "{sc}/{m}: one round, one sample");
        }
    }
    for (sc, m) in [
        ("file_tcp", "sendfile"),
        ("file_tcp", "libc_sendfile"),
        ("file_tcp", "splice"),
        ("file_tcp", "auto_drop_behind"),
        ("file_tcp", "auto_direct"),
        ("tcp_tcp", "relay"),
        ("response_4k", "send_parts"),
        ("response_4k", "libc_write_sendfile"),
    ] {
        assert_eq!(
            row(sc, m).get("status").and_then(Json::as_str),
            Some("measured"),
            "{sc}/{m}"
        );
    }
    // Responses count operations and the segments they took (how many depends on how much
    // the kernel merged, so only "some" is certain).
    for m in ["send_parts", "libc_write_sendfile"] {
        let r = row("response_4k", m);
        assert!(
            r.get("ops_per_sec")
                .and_then(Json::as_f64)
                .is_some_and(|x| x > 0.0),
            "{m}: {r:?}"
        );
        assert!(
            r.get("segments_per_op")
                .and_then(Json::as_f64)
                .is_some_and(|x| x > 0.0),
            "{m}: {r:?}"
        );
    }
    assert!(matches!(
        row("file_tcp", "auto").get("segments_per_op"),
        Some(Json::Null)
    ));
    // The engine itself says which methods do not apply.
    assert_eq!(
        row("tcp_tcp", "sendfile")
            .get("status")
            .and_then(Json::as_str),
        Some("not_applicable")
    );
    assert!(
        rows.iter()
            .all(|r| r.get("status").and_then(Json::as_str) != Some("failed")),
        "a run failed: {rows:?}"
    );
    let findings = doc
        .get("findings")
        .and_then(Json::as_arr)
        .expect("a findings array");
    assert!(!findings.is_empty());
    let finding = |sc: &str| {
        findings
            .iter()
            .find(|f| f.get("scenario").and_then(Json::as_str) == Some(sc))
            .unwrap_or_else(|| panic!("no finding for {sc}"))
    };
    // Every scenario that runs the method list names its fastest method; the response
    // scenario compares two ways of sending a response instead.
    assert!(findings.iter().all(|f| {
        let methods = f.get("scenario").and_then(Json::as_str) != Some("response_4k");
        f.get("fastest_gbps")
            .and_then(Json::as_f64)
            .is_some_and(|g| g > 0.0)
            == methods
            && matches!(f.get("auto_gap_is_real"), Some(Json::Bool(_)))
            && f.get("text").and_then(Json::as_str).is_some()
    }));
    let cache = finding("file_tcp").get("cache").expect("a cache field");
    for p in ["drop_behind", "direct"] {
        assert!(
            cache
                .get("vs_keep_gbps")
                .and_then(|c| c.get(p))
                .and_then(Json::as_f64)
                .is_some_and(|r| r > 0.0),
            "{p}: {cache:?}"
        );
    }
    let resp = finding("response_4k")
        .get("response")
        .expect("a response field");
    assert!(
        resp.get("ops_ratio")
            .and_then(Json::as_f64)
            .is_some_and(|r| r > 0.0),
        "{resp:?}"
    );
    for m in ["send_parts", "libc_write_sendfile"] {
        assert!(
            resp.get("segments_per_response")
                .and_then(|c| c.get(m))
                .and_then(Json::as_f64)
                .is_some_and(|x| x > 0.0),
            "{m}: {resp:?}"
        );
    }
    assert!(
        !table.contains("PASS") && !table.contains("FAIL"),
        "no pass/fail verdicts in the product's output:\n{table}"
    );
}

#[test]
fn bench_rejects_bad_arguments() {
    for args in [
        &["bench", "--size", "0"][..],
        &["bench", "--rounds", "0"],
        &["bench", "--scenario", "nope"],
        &["bench", "--min-time", "-1"],
    ] {
        let mut cmd = zcopy();
        cmd.args(args);
        let out = run_limited(cmd, LIMIT, "zcopy bench with a bad argument");
        // A usage error, as clap's own: exit status 2, not a runtime failure (1).
        assert_eq!(out.status.code(), Some(2), "{args:?}");
    }
}

#[test]
fn copy_checks_the_source_before_touching_the_destination() {
    let dir = TempDir::new("srccheck");
    let existing = dir.path("existing");
    write_file(&existing, b"keep me");
    for src in [dir.path("subdir"), dir.path("missing")] {
        if src.ends_with("subdir") {
            std::fs::create_dir(&src).expect("mkdir");
        }
        let mut cmd = zcopy();
        cmd.arg("copy").arg(&src).arg(&existing);
        let out = run_limited(cmd, LIMIT, "zcopy copy of a bad source");
        assert_eq!(out.status.code(), Some(1));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(&src.display().to_string()),
            "names the path: {err}"
        );
        assert_eq!(
            std::fs::read(&existing).expect("read back"),
            b"keep me",
            "{src:?}"
        );
    }
}

#[test]
fn copy_to_a_closed_stdout_fails_and_a_file_onto_itself_is_refused() {
    let dir = TempDir::new("stdout");
    let f = dir.path("f");
    write_file(&f, b"abc");
    let sh = |script: &str| {
        let mut cmd = Command::new("sh");
        cmd.arg("-c")
            .arg(script)
            .arg("sh")
            .arg(env!("CARGO_BIN_EXE_zcopy"))
            .arg(&f);
        run_limited(cmd, LIMIT, script)
    };
    let out = sh(r#""$1" copy "$2" - >&-"#);
    assert_eq!(out.status.code(), Some(1), "stdout closed");
    assert!(String::from_utf8_lossy(&out.stderr).contains("standard output is closed"));
    let out = sh(r#""$1" copy - "$2.out" <&-"#);
    assert_eq!(out.status.code(), Some(1), "stdin closed");
    // `zcopy copy f - >> f`: the same file, refused before it grows.
    let out = sh(r#""$1" copy "$2" - >> "$2""#);
    assert_eq!(out.status.code(), Some(1), "same file");
    assert_eq!(std::fs::read(&f).expect("read back"), b"abc");
}
