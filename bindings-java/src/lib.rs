//! zcopy-jni: the JNI bridge behind `dev.zcopy.Native` (`libzcopy_jni.so`).
//!
//! The bridge is not the API: every function here is a thin shell that reads its arguments,
//! calls `zcopy-core` and maps the outcome; the public, documented API is the hand-written Java
//! in `dev.zcopy`. Each entry point runs inside [`EnvUnowned::with_env`], which catches panics;
//! the [`Throw`] error policy turns errors into the Java exceptions of the error table in
//! DESIGN.md (one exhaustive `match` on [`ErrorCode`]) and panics into `AssertionError`, so
//! nothing unwinds into the JVM.
//!
//! File descriptors are read from `java.io.FileDescriptor.fd` over JNI (which skips module
//! access checks) and duplicated at once; the number is read again after the `dup`, and a
//! changed number means the Java side closed it concurrently, so the call fails with EBADF
//! instead of touching whatever file reused the number. The engine then works on the duplicate.

use std::collections::{HashMap, VecDeque};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use jni::errors::ErrorPolicy;
use jni::objects::{JByteBuffer, JClass, JLongArray, JObject, JString, JThrowable, JValue};
use jni::refs::Global;
use jni::strings::JNIString;
use jni::sys::{jboolean, jint, jlong};
use jni::{Env, EnvUnowned, jni_sig, jni_str};
use zcopy_core::fd::FdKind;

mod parts;
use zcopy_core::{
    Cache, ErrorCode, ExternalBuffer, Method, Options, RelayOptions, Report, ZeroCopySender,
};

/// The version of this native library; `NativeLoader` refuses a library whose version differs
/// from the jar's.
const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Why a native method failed; [`Throw`] turns it into a Java exception.
#[derive(Debug)]
enum Failure {
    /// An engine error, mapped through the error table.
    Engine(zcopy_core::Error),
    /// A JNI call failed (a Java exception may already be pending, which then wins).
    Jni(jni::errors::Error),
    /// A required object argument was null.
    Null(&'static str),
    /// An argument out of range.
    Invalid(String),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Engine(e) => write!(f, "{e}"),
            Failure::Jni(e) => write!(f, "JNI: {e}"),
            Failure::Null(what) => write!(f, "{what} is null"),
            Failure::Invalid(msg) => f.write_str(msg),
        }
    }
}

impl From<jni::errors::Error> for Failure {
    fn from(e: jni::errors::Error) -> Failure {
        Failure::Jni(e)
    }
}

impl From<zcopy_core::Error> for Failure {
    fn from(e: zcopy_core::Error) -> Failure {
        Failure::Engine(e)
    }
}

type Res<T> = Result<T, Failure>;

/// The error policy of every entry point: errors become the exceptions of the error table,
/// panics become `AssertionError`, and the method returns its type's default value (which
/// the JVM ignores while an exception is pending).
struct Throw;

impl<T: Default> ErrorPolicy<T, Failure> for Throw {
    type Captures<'unowned_env_local: 'native_method, 'native_method> = ();

    fn on_error<'unowned_env_local: 'native_method, 'native_method>(
        env: &mut Env<'unowned_env_local>,
        _cap: &mut (),
        err: Failure,
    ) -> jni::errors::Result<T> {
        // A pending Java exception (from a failed JNI call) says more than our wrapper would.
        if !env.exception_check() {
            // `throw*` returns Err(JavaException) once the exception is pending: that is the
            // point, so only a failure to build the exception is worth reporting.
            if let Err(e) = throw_failure(env, err)
                && !env.exception_check()
            {
                return Err(e);
            }
        }
        Ok(T::default())
    }

    fn on_panic<'unowned_env_local: 'native_method, 'native_method>(
        env: &mut Env<'unowned_env_local>,
        _cap: &mut (),
        payload: Box<dyn std::any::Any + Send + 'static>,
    ) -> jni::errors::Result<T> {
        let what = payload
            .downcast_ref::<&'static str>()
            .map(|s| (*s).to_owned())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "non-string panic payload".to_owned());
        // The payload may hold anything; leaking it cannot panic, dropping it might.
        std::mem::forget(payload);
        if env.exception_check() {
            env.exception_clear();
        }
        let _ = env.throw_new(
            jni_str!("java/lang/AssertionError"),
            JNIString::from(format!("zcopy: panic in native code: {what}")),
        );
        Ok(T::default())
    }
}

fn throw_failure(env: &mut Env<'_>, err: Failure) -> jni::errors::Result<()> {
    match err {
        Failure::Engine(e) => throw_engine(env, &e),
        Failure::Jni(e) => throw_plain(
            env,
            jni_str!("java/lang/AssertionError"),
            &format!("zcopy: JNI call failed: {e}"),
        ),
        Failure::Null(what) => throw_plain(
            env,
            jni_str!("java/lang/NullPointerException"),
            &format!("{what} is null"),
        ),
        Failure::Invalid(msg) => {
            throw_plain(env, jni_str!("java/lang/IllegalArgumentException"), &msg)
        }
    }
}

fn throw_plain(
    env: &mut Env<'_>,
    class: &jni::strings::JNIStr,
    msg: &str,
) -> jni::errors::Result<()> {
    env.throw_new(class, JNIString::from(msg))
}

/// The error table of DESIGN.md, Java column: the one exhaustive match of this binding.
fn throw_engine(env: &mut Env<'_>, e: &zcopy_core::Error) -> jni::errors::Result<()> {
    let msg = e.to_string();
    let bytes = i64::try_from(e.bytes()).unwrap_or(i64::MAX);
    match e.code() {
        ErrorCode::Ok => throw_plain(
            env,
            jni_str!("java/lang/AssertionError"),
            &format!("zcopy: error with code OK: {msg}"),
        ),
        ErrorCode::Os => throw_zcopy(env, &msg, e.errno().unwrap_or(0), bytes),
        ErrorCode::Unsupported => throw_with_bytes(
            env,
            jni_str!("dev/zcopy/ZcopyUnsupportedException"),
            &msg,
            bytes,
        ),
        // Refused before a byte moved. Once bytes have gone (a file that shrank under a
        // `sendParts` range) the count must not be lost: a ZcopyException with EINVAL says it.
        ErrorCode::InvalidArgument if bytes > 0 => throw_zcopy(env, &msg, libc::EINVAL, bytes),
        ErrorCode::InvalidArgument => {
            throw_plain(env, jni_str!("java/lang/IllegalArgumentException"), &msg)
        }
        // Transfers turn WouldBlock into a partial count before this point; elsewhere it is
        // the errno it stands for.
        ErrorCode::WouldBlock => throw_zcopy(env, &msg, libc::EAGAIN, bytes),
        ErrorCode::TimedOut => throw_with_bytes(
            env,
            jni_str!("dev/zcopy/ZcopyTimeoutException"),
            &msg,
            bytes,
        ),
        ErrorCode::NullParameter => {
            throw_plain(env, jni_str!("java/lang/NullPointerException"), &msg)
        }
        ErrorCode::Panic => throw_plain(env, jni_str!("java/lang/AssertionError"), &msg),
    }
}

/// `throw new ZcopyException(msg, errno, bytes)`.
fn throw_zcopy(env: &mut Env<'_>, msg: &str, errno: i32, bytes: i64) -> jni::errors::Result<()> {
    let jmsg = env.new_string(msg)?;
    let obj = env.new_object(
        jni_str!("dev/zcopy/ZcopyException"),
        jni_sig!("(Ljava/lang/String;IJ)V"),
        &[
            JValue::Object(&jmsg),
            JValue::Int(errno),
            JValue::Long(bytes),
        ],
    )?;
    let t = env.cast_local::<JThrowable>(obj)?;
    env.throw(&t)
}

/// `throw new <class>(msg, bytes)` for the subclasses that carry no errno.
fn throw_with_bytes(
    env: &mut Env<'_>,
    class: &jni::strings::JNIStr,
    msg: &str,
    bytes: i64,
) -> jni::errors::Result<()> {
    let jmsg = env.new_string(msg)?;
    let obj = env.new_object(
        class,
        jni_sig!("(Ljava/lang/String;J)V"),
        &[JValue::Object(&jmsg), JValue::Long(bytes)],
    )?;
    let t = env.cast_local::<JThrowable>(obj)?;
    env.throw(&t)
}

/// An OS error with this errno and no progress.
fn os(errno: i32) -> Failure {
    Failure::Engine(zcopy_core::Error::from_errno(errno))
}

/// Reads `FileDescriptor.fd` and duplicates it (see the crate docs for why it is read twice).
fn dup_fd(env: &mut Env<'_>, fdobj: &JObject<'_>, what: &'static str) -> Res<OwnedFd> {
    if fdobj.is_null() {
        return Err(Failure::Null(what));
    }
    let n = env.get_field(fdobj, jni_str!("fd"), jni_sig!("I"))?.i()?;
    if n < 0 {
        // A FileDescriptor that was never valid or has been closed.
        return Err(os(libc::EBADF));
    }
    // SAFETY: the only use of the borrow is F_DUPFD_CLOEXEC, which the kernel validates: if
    // the number was closed meanwhile it fails with EBADF, and if it was reused the re-read
    // below notices (Java sets the field to -1 before it closes the number).
    let dup = unsafe { BorrowedFd::borrow_raw(n) }
        .try_clone_to_owned()
        .map_err(zcopy_core::Error::from)?;
    let again = env.get_field(fdobj, jni_str!("fd"), jni_sig!("I"))?.i()?;
    if again != n {
        return Err(os(libc::EBADF));
    }
    Ok(dup)
}

/// A `dev.zcopy.Cache` number.
fn cache_of(n: jint) -> Res<Cache> {
    match n {
        0 => Ok(Cache::Keep),
        1 => Ok(Cache::DropBehind),
        2 => Ok(Cache::Direct),
        _ => Err(Failure::Invalid(format!("unknown cache policy number {n}"))),
    }
}

fn opt_u64(v: jlong) -> Option<u64> {
    u64::try_from(v).ok()
}

fn opt_duration(nanos: jlong) -> Option<Duration> {
    u64::try_from(nanos).ok().map(Duration::from_nanos)
}

fn to_jlong(v: u64) -> jlong {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// Slots of the `long[]` a transfer fills (mirrored in `dev.zcopy.Native`).
const REPORT_LEN: usize = 8;

fn report_slots(r: &Report, would_block: bool, elapsed: Duration) -> [jlong; REPORT_LEN] {
    [
        to_jlong(r.bytes),
        r.method as jlong,
        to_jlong(r.syscalls),
        jlong::try_from(r.fallbacks.len()).unwrap_or(jlong::MAX),
        to_jlong(r.zc_sends),
        to_jlong(r.zc_copied),
        jlong::from(would_block),
        jlong::try_from(elapsed.as_nanos()).unwrap_or(jlong::MAX),
    ]
}

/// Fills the report of a transfer-like call, whose WouldBlock is not an exception (the report
/// says so with the bytes moved); any other error becomes the exception.
fn report_outcome(
    env: &Env<'_>,
    report: &JLongArray<'_>,
    outcome: zcopy_core::Result<Report>,
    elapsed: Duration,
) -> Res<()> {
    match outcome {
        Ok(r) => fill(env, report, &report_slots(&r, false, elapsed)),
        Err(e) if e.code() == ErrorCode::WouldBlock => {
            fill(env, report, &report_slots(&e.report, true, elapsed))
        }
        Err(e) => Err(e.into()),
    }
}

fn fill(env: &Env<'_>, out: &JLongArray<'_>, slots: &[jlong]) -> Res<()> {
    if out.is_null() {
        return Err(Failure::Null("report array"));
    }
    if out.len(env)? < slots.len() {
        return Err(Failure::Invalid(format!(
            "report array needs {} slots",
            slots.len()
        )));
    }
    out.set_region(env, 0, slots)?;
    Ok(())
}

/// Checks that `dst` can take a positional write (`FileChannel.transferFrom`, which writes at
/// a position and leaves the channel's own position alone: the engine's `dst_offset`).
/// Regular files only; Unsupported (the Java side then uses the JDK) for O_APPEND, where Linux
/// appends whatever the offset, and O_DIRECT, whose alignment rules the JDK handles.
fn check_positional(dst: &OwnedFd) -> Res<()> {
    let info = zcopy_core::classify(dst.as_fd())?;
    if info.kind != FdKind::Regular {
        return Err(
            zcopy_core::Error::unsupported("a positional write needs a regular file").into(),
        );
    }
    if info.append() || info.flags & libc::O_DIRECT != 0 {
        return Err(zcopy_core::Error::unsupported(
            "positional writes to O_APPEND or O_DIRECT files are left to the JDK",
        )
        .into());
    }
    Ok(())
}

/// `Native.panicForTest()`: proves that a panic becomes `AssertionError` (see [`Throw`]).
#[jni::jni_mangle("dev.zcopy.Native")]
pub fn panic_for_test<'local>(mut unowned: EnvUnowned<'local>, _class: JClass<'local>) {
    unowned
        .with_env(|_env| -> Res<()> { panic!("panicForTest: a deliberate panic") })
        .resolve::<Throw>()
}

/// `Native.version()`.
#[jni::jni_mangle("dev.zcopy.Native")]
pub fn version<'local>(mut unowned: EnvUnowned<'local>, _class: JClass<'local>) -> JString<'local> {
    unowned
        .with_env(|env| -> Res<JString<'local>> { Ok(env.new_string(VERSION)?) })
        .resolve::<Throw>()
}

/// `Native.capabilities()`: bit `1 << method` set for each supported method.
#[jni::jni_mangle("dev.zcopy.Native")]
pub fn capabilities<'local>(mut unowned: EnvUnowned<'local>, _class: JClass<'local>) -> jint {
    unowned
        .with_env(|_env| -> Res<jint> {
            Ok(jint::try_from(zcopy_core::capabilities().bits()).unwrap_or(0))
        })
        .resolve::<Throw>()
}

/// `Native.channelFd(Object)`: the channel's `FileDescriptor fd` field, or null if it has none.
#[jni::jni_mangle("dev.zcopy.Native")]
pub fn channel_fd<'local>(
    mut unowned: EnvUnowned<'local>,
    _class: JClass<'local>,
    channel: JObject<'local>,
) -> JObject<'local> {
    unowned
        .with_env(|env| -> Res<JObject<'local>> {
            if channel.is_null() {
                return Err(Failure::Null("channel"));
            }
            match env.get_field(
                &channel,
                jni_str!("fd"),
                jni_sig!("Ljava/io/FileDescriptor;"),
            ) {
                Ok(v) => Ok(v.l()?),
                // Not a JDK channel implementation: the caller falls back to the JDK.
                Err(jni::errors::Error::FieldNotFound { .. }) => Ok(JObject::null()),
                Err(e) => Err(e.into()),
            }
        })
        .resolve::<Throw>()
}

/// `Native.channelAccess(Object)`: bit 0 the `readable` field, bit 1 the `writable` field of
/// a JDK `FileChannel`; -1 if the class has no such fields.
#[jni::jni_mangle("dev.zcopy.Native")]
pub fn channel_access<'local>(
    mut unowned: EnvUnowned<'local>,
    _class: JClass<'local>,
    channel: JObject<'local>,
) -> jint {
    unowned
        .with_env(|env| -> Res<jint> {
            if channel.is_null() {
                return Err(Failure::Null("channel"));
            }
            let mut bits = 0;
            for (name, bit) in [(jni_str!("readable"), 1), (jni_str!("writable"), 2)] {
                match env.get_field(&channel, name, jni_sig!("Z")) {
                    Ok(v) => {
                        if v.z()? {
                            bits |= bit;
                        }
                    }
                    Err(jni::errors::Error::FieldNotFound { .. }) => return Ok(-1),
                    Err(e) => return Err(e.into()),
                }
            }
            Ok(bits)
        })
        .resolve::<Throw>()
}

/// `Native.fdNumber(FileDescriptor)`: the raw number (for diagnostics and tests), -1 if closed.
#[jni::jni_mangle("dev.zcopy.Native")]
pub fn fd_number<'local>(
    mut unowned: EnvUnowned<'local>,
    _class: JClass<'local>,
    fdobj: JObject<'local>,
) -> jint {
    unowned
        .with_env(|env| -> Res<jint> {
            if fdobj.is_null() {
                return Err(Failure::Null("fd"));
            }
            Ok(env.get_field(&fdobj, jni_str!("fd"), jni_sig!("I"))?.i()?)
        })
        .resolve::<Throw>()
}

/// `Native.transfer(...)`: the engine's transfer on duplicates of two FileDescriptors.
/// `offset`, `count`, `timeoutNanos` and `dstPosition` are -1 when absent. WouldBlock is not an
/// exception: the report says so (slot 6) with the bytes moved.
#[allow(clippy::too_many_arguments)]
#[jni::jni_mangle("dev.zcopy.Native")]
pub fn transfer<'local>(
    mut unowned: EnvUnowned<'local>,
    _class: JClass<'local>,
    src: JObject<'local>,
    dst: JObject<'local>,
    method: jint,
    offset: jlong,
    count: jlong,
    timeout_nanos: jlong,
    fallback: jboolean,
    dst_position: jlong,
    cache: jint,
    report: JLongArray<'local>,
) {
    unowned
        .with_env(|env| -> Res<()> {
            let method = Method::from_i32(method)
                .ok_or_else(|| Failure::Invalid(format!("unknown method number {method}")))?;
            if offset < -1 || count < -1 || dst_position < -1 {
                return Err(Failure::Invalid(
                    "offset, count and position must be -1 (absent) or >= 0".into(),
                ));
            }
            let s = dup_fd(env, &src, "src")?;
            let d = dup_fd(env, &dst, "dst")?;
            if dst_position >= 0 {
                check_positional(&d)?;
            }
            let opts = Options {
                method,
                offset: opt_u64(offset),
                dst_offset: opt_u64(dst_position),
                count: opt_u64(count),
                timeout: opt_duration(timeout_nanos),
                fallback,
                // HotSpot always installs its own SIGPIPE handler (it ignores the signal), so
                // the engine need not block it around each call.
                host_ignores_sigpipe: true,
                cache: cache_of(cache)?,
                ..Options::default()
            };
            let t0 = Instant::now();
            let outcome = zcopy_core::transfer(&s, &d, &opts);
            let elapsed = t0.elapsed();
            drop((s, d));
            report_outcome(env, &report, outcome, elapsed)
        })
        .resolve::<Throw>()
}

/// `Native.relay(a, b, timeoutNanos, report)`: report = [aToB, bToA, syscalls, buffered (1/0)],
/// filled on error too.
#[jni::jni_mangle("dev.zcopy.Native")]
pub fn relay<'local>(
    mut unowned: EnvUnowned<'local>,
    _class: JClass<'local>,
    a: JObject<'local>,
    b: JObject<'local>,
    timeout_nanos: jlong,
    report: JLongArray<'local>,
) {
    unowned
        .with_env(|env| -> Res<()> {
            let a = dup_fd(env, &a, "a")?;
            let b = dup_fd(env, &b, "b")?;
            let opts = RelayOptions {
                timeout: opt_duration(timeout_nanos),
                on_interrupt: None,
            };
            let (r, err) = match zcopy_core::relay(&a, &b, &opts) {
                Ok(r) => (r, None),
                Err(e) => (e.report, Some(e.error)),
            };
            fill(
                env,
                &report,
                &[
                    to_jlong(r.a_to_b),
                    to_jlong(r.b_to_a),
                    to_jlong(r.syscalls),
                    jlong::from(r.buffered),
                ],
            )?;
            match err {
                None => Ok(()),
                Some(e) => Err(e.into()),
            }
        })
        .resolve::<Throw>()
}

/// A MSG_ZEROCOPY sender plus a global reference to each direct ByteBuffer it may still read,
/// so the garbage collector cannot free a buffer before the kernel's completion for it.
struct SenderHandle {
    sender: ZeroCopySender,
    held: VecDeque<(u64, Global<JByteBuffer<'static>>)>,
}

impl SenderHandle {
    /// Drops the references of every buffer whose sends have all completed.
    fn release(&mut self) {
        let done = self.sender.done();
        while self.held.front().is_some_and(|(id, _)| *id < done) {
            self.held.pop_front();
        }
    }
}

/// Live senders by the handle Java holds. A handle is an id, never a pointer: one that was
/// never handed out, was forged, or was already closed is an exception, never a dereference
/// (a forged pointer would crash the JVM).
type Senders = HashMap<jlong, Arc<Mutex<SenderHandle>>>;
static SENDERS: Mutex<Option<Senders>> = Mutex::new(None);
static NEXT_HANDLE: AtomicI64 = AtomicI64::new(1);

fn senders<T>(f: impl FnOnce(&mut Senders) -> T) -> T {
    let mut g = SENDERS.lock().unwrap_or_else(|p| p.into_inner());
    f(g.get_or_insert_with(HashMap::new))
}

/// Registers a new sender; returns its handle.
fn register(h: SenderHandle) -> jlong {
    let id = NEXT_HANDLE.fetch_add(1, Ordering::Relaxed);
    senders(|m| m.insert(id, Arc::new(Mutex::new(h))));
    id
}

/// The sender behind a handle, or an exception for one that is not live.
fn sender_of(handle: jlong) -> Res<Arc<Mutex<SenderHandle>>> {
    senders(|m| m.get(&handle).cloned())
        .ok_or_else(|| Failure::Invalid(format!("sender handle {handle} is closed or unknown")))
}

/// Runs `f` on the live sender behind `handle` (one call at a time per sender).
fn with_sender<T>(handle: jlong, f: impl FnOnce(&mut SenderHandle) -> Res<T>) -> Res<T> {
    let h = sender_of(handle)?;
    let mut h = h.lock().unwrap_or_else(|p| p.into_inner());
    f(&mut h)
}

/// `Native.senderOpen(FileDescriptor)`: a sender on a TCP socket; returns its handle.
#[jni::jni_mangle("dev.zcopy.Native")]
pub fn sender_open<'local>(
    mut unowned: EnvUnowned<'local>,
    _class: JClass<'local>,
    sock: JObject<'local>,
) -> jlong {
    unowned
        .with_env(|env| -> Res<jlong> {
            let fd = dup_fd(env, &sock, "socket")?;
            let sender = ZeroCopySender::new(&fd)?;
            Ok(register(SenderHandle {
                sender,
                held: VecDeque::new(),
            }))
        })
        .resolve::<Throw>()
}

/// `Native.senderSend(handle, buf, position, length)`: sends `length` bytes of a direct buffer
/// from `position`; returns the send's id.
#[jni::jni_mangle("dev.zcopy.Native")]
pub fn sender_send<'local>(
    mut unowned: EnvUnowned<'local>,
    _class: JClass<'local>,
    handle: jlong,
    buf: JByteBuffer<'local>,
    position: jint,
    length: jint,
) -> jlong {
    unowned
        .with_env(|env| -> Res<jlong> {
            let sender = sender_of(handle)?;
            let mut h = sender.lock().unwrap_or_else(|p| p.into_inner());
            if buf.is_null() {
                return Err(Failure::Null("buffer"));
            }
            let addr = env.get_direct_buffer_address(&buf)?;
            let cap = env.get_direct_buffer_capacity(&buf)?;
            let (Ok(pos), Ok(len)) = (usize::try_from(position), usize::try_from(length)) else {
                return Err(Failure::Invalid("negative position or length".into()));
            };
            if pos.checked_add(len).is_none_or(|end| end > cap) {
                return Err(Failure::Invalid(format!(
                    "range {pos}+{len} outside a buffer of {cap} bytes"
                )));
            }
            let keep = env.new_global_ref(&buf)?;
            // SAFETY: [addr + pos, addr + pos + len) is inside the direct buffer's memory, which
            // the global reference `keep` keeps reachable (so not freed) until the completion
            // for this send arrives: `keep` is only dropped in `release`, after `done` passed
            // the id, or leaked. The Java API documents that the caller must not change it.
            let ext = unsafe { ExternalBuffer::new(addr.add(pos), len) };
            let before = h.sender.stats().sent;
            let result = h.sender.send_external(ext);
            // On a partial failure the sender keeps the buffer under the id it handed out.
            if h.sender.stats().sent > before {
                h.held.push_back((before, keep));
            }
            h.release();
            Ok(to_jlong(result?))
        })
        .resolve::<Throw>()
}

/// `Native.senderPoll(handle, timeoutNanos)`: waits for completions; returns the id below which
/// every send has completed.
#[jni::jni_mangle("dev.zcopy.Native")]
pub fn sender_poll<'local>(
    mut unowned: EnvUnowned<'local>,
    _class: JClass<'local>,
    handle: jlong,
    timeout_nanos: jlong,
) -> jlong {
    unowned
        .with_env(|_env| -> Res<jlong> {
            with_sender(handle, |h| {
                let done = h.sender.poll(opt_duration(timeout_nanos));
                h.release();
                Ok(to_jlong(done?))
            })
        })
        .resolve::<Throw>()
}

/// `Native.senderStats(handle, out)`: out = [sent, done, pending, completions, copied].
#[jni::jni_mangle("dev.zcopy.Native")]
pub fn sender_stats<'local>(
    mut unowned: EnvUnowned<'local>,
    _class: JClass<'local>,
    handle: jlong,
    out: JLongArray<'local>,
) {
    unowned
        .with_env(|env| -> Res<()> {
            let s = with_sender(handle, |h| Ok(h.sender.stats()))?;
            fill(
                env,
                &out,
                &[
                    to_jlong(s.sent),
                    to_jlong(s.done),
                    to_jlong(s.pending),
                    to_jlong(s.completions),
                    to_jlong(s.copied),
                ],
            )
        })
        .resolve::<Throw>()
}

/// `Native.senderClose(handle, timeoutNanos)`: waits for outstanding completions, then frees
/// the sender. Buffers whose completion never came stay referenced forever (leaked), never
/// released early; the call then throws ZcopyTimeoutException.
#[jni::jni_mangle("dev.zcopy.Native")]
pub fn sender_close<'local>(
    mut unowned: EnvUnowned<'local>,
    _class: JClass<'local>,
    handle: jlong,
    timeout_nanos: jlong,
) {
    unowned
        .with_env(|_env| -> Res<()> {
            // Closing twice, or a handle never handed out, is a no-op.
            let Some(h) = senders(|m| m.remove(&handle)) else {
                return Ok(());
            };
            // Another call on this sender may still hold it: wait for it under the lock.
            let mut h = match Arc::try_unwrap(h) {
                Ok(m) => m.into_inner().unwrap_or_else(|p| p.into_inner()),
                Err(shared) => {
                    senders(|m| m.insert(handle, shared));
                    return Err(Failure::Invalid(format!(
                        "sender handle {handle} is in use by another thread"
                    )));
                }
            };
            let waited = h.sender.poll(opt_duration(timeout_nanos));
            h.release();
            let SenderHandle { sender, held } = h;
            if !held.is_empty() {
                // The kernel may still read these buffers: keep them reachable for good.
                std::mem::forget(held);
            }
            // Completions that did not come are reported by close (it leaks their buffers).
            let closed = sender.close(Some(Duration::ZERO));
            waited?;
            closed?;
            Ok(())
        })
        .resolve::<Throw>()
}
