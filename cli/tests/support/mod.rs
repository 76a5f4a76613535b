//! Helpers for the CLI tests: running the built binary with a time limit, temp dirs, test data,
//! and a small JSON reader for `zcopy bench --json`.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStderr, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// The `zcopy` binary under test.
pub fn zcopy() -> Command {
    Command::new(env!("CARGO_BIN_EXE_zcopy"))
}

/// Waits for `child` at most `limit`, killing it and failing the test when it takes longer.
/// Piped stdout / stderr are read while waiting, so a chatty child cannot fill a pipe and stall.
pub fn wait_limited(mut child: Child, limit: Duration, what: &str) -> Output {
    fn drain(r: Option<impl Read + Send + 'static>) -> std::thread::JoinHandle<Vec<u8>> {
        std::thread::spawn(move || {
            let mut v = Vec::new();
            if let Some(mut r) = r {
                let _ = r.read_to_end(&mut v);
            }
            v
        })
    }
    let out = drain(child.stdout.take());
    let err = drain(child.stderr.take());
    let deadline = Instant::now() + limit;
    let status = loop {
        match child.try_wait().expect("try_wait on our own child") {
            Some(status) => break status,
            None if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                let err = err.join().expect("the stderr reader");
                panic!(
                    "{what} did not finish within {limit:?}; stderr: {}",
                    String::from_utf8_lossy(&err)
                );
            }
            None => std::thread::sleep(Duration::from_millis(10)),
        }
    };
    let stdout = out.join().expect("the stdout reader");
    let stderr = err.join().expect("the stderr reader");
    Output {
        status,
        stdout,
        stderr,
    }
}

/// Runs `cmd` to completion within `limit` with stdout and stderr captured.
pub fn run_limited(mut cmd: Command, limit: Duration, what: &str) -> Output {
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawning the zcopy binary");
    wait_limited(child, limit, what)
}

/// Reads the child's stderr until the "listening on ADDR" line and returns ADDR. The rest of
/// stderr is collected by a thread and returned by the join handle.
pub fn listening_addr(stderr: ChildStderr) -> (String, std::thread::JoinHandle<String>) {
    let mut r = BufReader::new(stderr);
    let mut line = String::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        line.clear();
        let n = r.read_line(&mut line).expect("reading the child's stderr");
        assert!(n > 0, "the child exited before printing its address");
        if let Some(rest) = line.trim().strip_prefix("zcopy: listening on ") {
            let addr = rest
                .split([',', ' '])
                .next()
                .expect("split yields at least one part")
                .to_owned();
            let rest = std::thread::spawn(move || {
                let mut s = String::new();
                let _ = r.read_to_string(&mut s);
                s
            });
            return (addr, rest);
        }
        assert!(Instant::now() < deadline, "no listening line within 20 s");
    }
}

/// A temporary directory removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    /// A fresh directory under the system temp dir.
    pub fn new(tag: &str) -> TempDir {
        static N: AtomicU32 = AtomicU32::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let p =
            std::env::temp_dir().join(format!("zcopy-cli-test-{}-{tag}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).expect("creating a temp dir");
        TempDir(p)
    }

    /// A path inside the directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `n` deterministic pseudo-random bytes.
pub fn data(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// Writes `bytes` to a new file at `path`.
pub fn write_file(path: &Path, bytes: &[u8]) {
    std::fs::write(path, bytes).expect("writing a test file");
}

/// A parsed JSON value.
#[derive(Debug, Clone, PartialEq)]
pub enum Json {
    Null,
    Bool(bool),
    Num(f64),
    Str(String),
    Arr(Vec<Json>),
    Obj(BTreeMap<String, Json>),
}

impl Json {
    /// `self[key]` for objects.
    pub fn get(&self, key: &str) -> Option<&Json> {
        match self {
            Json::Obj(m) => m.get(key),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Json::Str(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Json::Num(x) => Some(*x),
            _ => None,
        }
    }

    pub fn as_arr(&self) -> Option<&[Json]> {
        match self {
            Json::Arr(v) => Some(v),
            _ => None,
        }
    }
}

/// Parses a JSON document (enough of RFC 8259 for the bench output); panics on bad input.
pub fn parse_json(text: &str) -> Json {
    let mut p = Parser {
        s: text.as_bytes(),
        i: 0,
    };
    let v = p.value();
    p.ws();
    assert_eq!(
        p.i,
        p.s.len(),
        "trailing characters after the JSON document"
    );
    v
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn ws(&mut self) {
        while self.i < self.s.len() && self.s[self.i].is_ascii_whitespace() {
            self.i += 1;
        }
    }

    fn peek(&self) -> u8 {
        *self.s.get(self.i).expect("unexpected end of JSON")
    }

    fn eat(&mut self, lit: &str) {
        assert!(
            self.s[self.i..].starts_with(lit.as_bytes()),
            "expected {lit} at byte {}",
            self.i
        );
        self.i += lit.len();
    }

    fn value(&mut self) -> Json {
        self.ws();
        match self.peek() {
            b'n' => {
                self.eat("null");
                Json::Null
            }
            b't' => {
                self.eat("true");
                Json::Bool(true)
            }
            b'f' => {
                self.eat("false");
                Json::Bool(false)
            }
            b'"' => Json::Str(self.string()),
            b'[' => {
                self.i += 1;
                let mut v = Vec::new();
                self.ws();
                if self.peek() == b']' {
                    self.i += 1;
                    return Json::Arr(v);
                }
                loop {
                    v.push(self.value());
                    self.ws();
                    match self.peek() {
                        b',' => self.i += 1,
                        b']' => {
                            self.i += 1;
                            return Json::Arr(v);
                        }
                        c => panic!("unexpected {:?} in array at byte {}", c as char, self.i),
                    }
                }
            }
            b'{' => {
                self.i += 1;
                let mut m = BTreeMap::new();
                self.ws();
                if self.peek() == b'}' {
                    self.i += 1;
                    return Json::Obj(m);
                }
                loop {
                    self.ws();
                    let k = self.string();
                    self.ws();
                    self.eat(":");
                    let v = self.value();
                    m.insert(k, v);
                    self.ws();
                    match self.peek() {
                        b',' => self.i += 1,
                        b'}' => {
                            self.i += 1;
                            return Json::Obj(m);
                        }
                        c => panic!("unexpected {:?} in object at byte {}", c as char, self.i),
                    }
                }
            }
            _ => {
                let start = self.i;
                while self.i < self.s.len()
                    && matches!(
                        self.s[self.i],
                        b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9'
                    )
                {
                    self.i += 1;
                }
                let t = std::str::from_utf8(&self.s[start..self.i]).expect("numbers are ASCII");
                Json::Num(
                    t.parse()
                        .unwrap_or_else(|_| panic!("bad number {t:?} at byte {start}")),
                )
            }
        }
    }

    fn string(&mut self) -> String {
        self.eat("\"");
        let mut out = String::new();
        loop {
            let c = self.peek();
            self.i += 1;
            match c {
                b'"' => return out,
                b'\\' => {
                    let e = self.peek();
                    self.i += 1;
                    match e {
                        b'"' => out.push('"'),
                        b'\\' => out.push('\\'),
                        b'/' => out.push('/'),
                        b'n' => out.push('\n'),
                        b't' => out.push('\t'),
                        b'r' => out.push('\r'),
                        b'b' => out.push('\u{8}'),
                        b'f' => out.push('\u{c}'),
                        b'u' => {
                            let hex = std::str::from_utf8(&self.s[self.i..self.i + 4])
                                .expect("hex is ASCII");
                            let n = u32::from_str_radix(hex, 16).expect("four hex digits");
                            out.push(char::from_u32(n).unwrap_or('\u{fffd}'));
                            self.i += 4;
                        }
                        c => panic!("bad escape \\{}", c as char),
                    }
                }
                _ => {
                    // Copy a whole UTF-8 sequence.
                    let start = self.i - 1;
                    let mut end = self.i;
                    while end < self.s.len() && (self.s[end] & 0xc0) == 0x80 {
                        end += 1;
                    }
                    out.push_str(std::str::from_utf8(&self.s[start..end]).expect("valid UTF-8"));
                    self.i = end;
                }
            }
        }
    }
}

#[test]
fn json_reader() {
    let j = parse_json(
        r#" {"a": [1, 2.5e1, -3], "b": "x\"\u00e9y", "c": {"d": null, "e": true}, "f": []} "#,
    );
    assert_eq!(
        j.get("a").and_then(Json::as_arr).map(<[Json]>::len),
        Some(3)
    );
    assert_eq!(
        j.get("a")
            .and_then(Json::as_arr)
            .and_then(|a| a[1].as_f64()),
        Some(25.0)
    );
    assert_eq!(j.get("b").and_then(Json::as_str), Some("x\"éy"));
    assert_eq!(j.get("c").and_then(|c| c.get("e")), Some(&Json::Bool(true)));
}
