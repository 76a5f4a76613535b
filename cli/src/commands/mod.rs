//! The subcommands other than `bench`, and what they share: opening endpoints, driving a
//! transfer in chunks behind a progress bar, and the one-line summary.

pub mod copy;
pub mod net;
pub mod probe;
pub mod relay;

use std::fs::File;
use std::io::{self, IsTerminal, Seek};
use std::net::TcpStream;
use std::os::fd::{AsFd, BorrowedFd};
use std::path::Path;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use zcopy_core::{FdKind, Options, Report, transfer};

use crate::TransferArgs;
use crate::units::{fmt_bytes, fmt_rate};

/// What every command returns: `Err` holds the message printed after `zcopy: error:`.
pub type CliResult<T = ()> = Result<T, String>;

/// A transfer is "long" (worth a progress bar) from this many bytes on.
const LONG_TRANSFER: u64 = 64 << 20;
/// With a progress bar, the transfer runs in `count`-limited chunks of this size.
const CHUNK: u64 = 16 << 20;
/// A source of unknown size gets a spinner once the transfer has run this long.
const SPINNER_AFTER: Duration = Duration::from_secs(1);

/// One side of a transfer: a standard stream, a file or a socket.
pub enum Endpoint {
    /// Standard input.
    Stdin(io::Stdin),
    /// Standard output.
    Stdout(io::Stdout),
    /// A file opened by path.
    File(File),
    /// A connected TCP socket.
    Tcp(TcpStream),
}

impl AsFd for Endpoint {
    fn as_fd(&self) -> BorrowedFd<'_> {
        match self {
            Endpoint::Stdin(s) => s.as_fd(),
            Endpoint::Stdout(s) => s.as_fd(),
            Endpoint::File(f) => f.as_fd(),
            Endpoint::Tcp(s) => s.as_fd(),
        }
    }
}

/// Standard streams (0, 1, 2) that were closed when the program started.
static CLOSED_AT_START: OnceLock<[bool; 3]> = OnceLock::new();

/// Run first thing: remembers which standard streams were closed when the program started, so
/// that `-` for one of them is an error rather than a silent copy to nowhere.
///
/// Rust's runtime has already reopened a closed standard stream before `main` (so that no file
/// opened later takes its number): as `/dev/null`, read-write. A shell redirection to
/// `/dev/null` opens it read-only or write-only, so a read-write `/dev/null` there is taken as
/// "was closed" (`1<>/dev/null` would be mistaken for it).
pub fn guard_standard_streams() {
    let null = File::open("/dev/null")
        .ok()
        .and_then(|f| zcopy_core::classify(f.as_fd()).ok());
    let reopened = |fd: BorrowedFd<'_>| {
        let info = zcopy_core::classify(fd).ok();
        match (info, null) {
            (Some(i), Some(n)) => {
                i.dev_ino == n.dev_ino && i.access() == zcopy_core::fd::Access::ReadWrite
            }
            _ => true,
        }
    };
    let closed = [
        reopened(io::stdin().as_fd()),
        reopened(io::stdout().as_fd()),
        reopened(io::stderr().as_fd()),
    ];
    let _ = CLOSED_AT_START.set(closed);
}

fn closed_at_start(fd: usize) -> bool {
    CLOSED_AT_START.get().is_some_and(|c| c[fd])
}

impl Endpoint {
    /// Opens `path` for reading, `-` meaning stdin. A directory is refused here, before the
    /// destination is touched (as `cp` does).
    pub fn open_src(path: &Path) -> CliResult<Endpoint> {
        if path.as_os_str() == "-" {
            if closed_at_start(0) {
                return Err("-: standard input is closed".into());
            }
            return Ok(Endpoint::Stdin(io::stdin()));
        }
        let err = |e: io::Error| format!("{}: {e}", path.display());
        let f = File::open(path).map_err(err)?;
        if f.metadata().map_err(err)?.is_dir() {
            return Err(err(io::Error::from_raw_os_error(libc::EISDIR)));
        }
        Ok(Endpoint::File(f))
    }

    /// Creates or truncates `path` (or appends to it) for writing, `-` meaning stdout. When
    /// `src` is the same file, fails before truncating it.
    pub fn open_dst(path: &Path, append: bool, src: Option<&Endpoint>) -> CliResult<Endpoint> {
        if path.as_os_str() == "-" {
            if closed_at_start(1) {
                return Err("-: standard output is closed".into());
            }
            return Ok(Endpoint::Stdout(io::stdout()));
        }
        let err = |e: io::Error| format!("{}: {e}", path.display());
        let f = File::options()
            .write(true)
            .create(true)
            .append(append)
            .open(path)
            .map_err(err)?;
        if let Some(src) = src {
            let id =
                |fd: BorrowedFd<'_>| zcopy_core::classify(fd).ok().map(|i| (i.kind, i.dev_ino));
            if let (Some((FdKind::Regular, a)), Some((_, b))) = (id(src.as_fd()), id(f.as_fd()))
                && a == b
            {
                return Err(format!(
                    "{}: the source and the destination are the same file",
                    path.display()
                ));
            }
        }
        // Like O_TRUNC, which devices and FIFOs ignore.
        if !append && f.metadata().map_err(err)?.is_file() {
            f.set_len(0).map_err(err)?;
        }
        Ok(Endpoint::File(f))
    }

    /// Bytes left to read when that is knowable: a regular file's size minus the start.
    fn remaining(&self, offset: Option<u64>) -> Option<u64> {
        let info = zcopy_core::classify(self.as_fd()).ok()?;
        if info.kind != FdKind::Regular || info.size == 0 {
            return None;
        }
        let start = match (offset, self) {
            (Some(o), _) => o,
            (None, Endpoint::File(f)) => {
                let mut f = f;
                f.stream_position().ok()?
            }
            // stdin redirected from a file: its position is not worth a syscall dance here;
            // the bar may start a little short of the end, which the summary corrects.
            (None, _) => 0,
        };
        Some(info.size.saturating_sub(start))
    }
}

/// Builds the engine options for a command's method flags. A command's own default method
/// (splice for `recv`) may fall back, since the user did not ask for it; a method named with
/// `--method` falls back only with `--fallback`.
pub fn options(args: &TransferArgs, default: zcopy_core::Method) -> Options {
    Options {
        method: args.method.unwrap_or(default),
        fallback: args.fallback || args.method.is_none(),
        ..Options::default()
    }
}

/// A finished transfer: the engine's (summed) report and the wall time it took.
pub struct Done {
    /// What the engine did.
    pub report: Report,
    /// Wall time, measured here: timing is the caller's job, not the engine's hot path.
    pub elapsed: Duration,
}

/// Runs `transfer(src, dst, opts)`, in chunks behind a progress bar on stderr when stderr is a
/// terminal and the transfer is long, in one call otherwise. Returns the summed report.
pub fn drive(
    src: &Endpoint,
    dst: &Endpoint,
    opts: &Options,
    quiet: bool,
) -> Result<Done, zcopy_core::Error> {
    let t0 = Instant::now();
    let report = drive_chunks(src, dst, opts, quiet)?;
    Ok(Done {
        report,
        elapsed: t0.elapsed(),
    })
}

fn drive_chunks(
    src: &Endpoint,
    dst: &Endpoint,
    opts: &Options,
    quiet: bool,
) -> Result<Report, zcopy_core::Error> {
    let expected = match (opts.count, src.remaining(opts.offset)) {
        (Some(c), Some(r)) => Some(c.min(r)),
        (c, r) => c.or(r),
    };
    let show = !quiet && io::stderr().is_terminal() && expected.is_none_or(|n| n >= LONG_TRANSFER);
    if !show {
        return transfer(src, dst, opts);
    }
    let t0 = Instant::now();
    let mut bar = expected.map(bar_for);
    let mut total = Report {
        method: opts.method,
        ..Report::default()
    };
    loop {
        let want = match opts.count {
            Some(c) => (c - total.bytes).min(CHUNK),
            None => CHUNK,
        };
        if want == 0 {
            break;
        }
        let chunk = Options {
            offset: opts.offset.map(|o| o + total.bytes),
            count: Some(want),
            ..opts.clone()
        };
        let result = transfer(src, dst, &chunk);
        let (report, err) = match result {
            Ok(r) => (r, None),
            Err(mut e) => (std::mem::take(&mut e.report), Some(e)),
        };
        merge(&mut total, &report);
        if bar.is_none() && t0.elapsed() >= SPINNER_AFTER {
            bar = Some(spinner());
        }
        if let Some(b) = &bar {
            b.set_position(total.bytes);
        }
        if let Some(mut e) = err {
            if let Some(b) = &bar {
                b.abandon();
            }
            e.report = total;
            return Err(e);
        }
        if report.bytes < want {
            break;
        }
    }
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    Ok(total)
}

fn bar_for(len: u64) -> ProgressBar {
    let style = ProgressStyle::with_template(
        "{bar:40.cyan/blue} {bytes}/{total_bytes} {binary_bytes_per_sec} eta {eta}",
    )
    .expect("the template is a valid literal")
    .progress_chars("=> ");
    ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr()).with_style(style)
}

fn spinner() -> ProgressBar {
    let style = ProgressStyle::with_template("{spinner} {bytes} {binary_bytes_per_sec} {elapsed}")
        .expect("the template is a valid literal");
    ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr()).with_style(style)
}

/// Adds one chunk's report to the running total.
fn merge(total: &mut Report, r: &Report) {
    total.bytes += r.bytes;
    total.syscalls += r.syscalls;
    total.zc_sends += r.zc_sends;
    total.zc_copied += r.zc_copied;
    if r.bytes > 0 || total.bytes == 0 {
        total.method = r.method;
    }
    for f in &r.fallbacks {
        if !total
            .fallbacks
            .iter()
            .any(|t| t.from == f.from && t.to == f.to)
        {
            total.fallbacks.push(f.clone());
        }
    }
}

/// The one-line summary: bytes, time, rate, method, syscalls, fallbacks.
pub fn summary(verb: &str, done: &Done) -> String {
    let (r, elapsed) = (&done.report, done.elapsed);
    let mut line = format!(
        "zcopy: {verb} {} bytes ({}) in {:.3} s, {}, method {}, {} syscalls",
        r.bytes,
        fmt_bytes(r.bytes),
        elapsed.as_secs_f64(),
        fmt_rate(r.bytes, elapsed),
        r.method,
        r.syscalls
    );
    if r.zc_sends > 0 {
        line += &format!(
            ", {} zero-copy sends ({} copied by the kernel)",
            r.zc_sends, r.zc_copied
        );
    }
    for f in &r.fallbacks {
        line += &format!(", fell back {} -> {} ({})", f.from, f.to, f.reason);
    }
    line
}

/// Prints the summary on stderr unless quiet, or turns an engine error into the message.
pub fn finish(verb: &str, result: Result<Done, zcopy_core::Error>, quiet: bool) -> CliResult {
    match result {
        Ok(r) => {
            if !quiet {
                eprintln!("{}", summary(verb, &r));
            }
            Ok(())
        }
        Err(e) => {
            let mut msg = e.to_string();
            if !e.report.fallbacks.is_empty() {
                let tried: Vec<String> = e
                    .report
                    .fallbacks
                    .iter()
                    .map(|f| format!("{} ({})", f.from, f.reason))
                    .collect();
                msg += &format!("; gave up on {}", tried.join(", "));
            }
            Err(msg)
        }
    }
}
