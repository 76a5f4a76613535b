//! `Native.sendParts`: a whole response (bytes and file ranges) in one engine call.

use std::os::fd::{AsFd, OwnedFd};
use std::time::Instant;

use jni::objects::{JByteArray, JByteBuffer, JClass, JLongArray, JObject, JObjectArray};
use jni::sys::{jint, jlong};
use jni::{Env, EnvUnowned};
use zcopy_core::{Part, PartsOptions};

use crate::{Failure, Res, Throw, cache_of, dup_fd, opt_duration, report_outcome};

/// A bytes part's memory for the call: a copy of a `byte[]` region, or a direct buffer's own
/// memory (the caller's local reference keeps the buffer reachable for the call).
enum Bytes<'a> {
    Copied(Vec<u8>),
    Direct(&'a [u8]),
}

/// One part as read from the arrays.
enum Read<'a> {
    Bytes(Bytes<'a>),
    File { fd: OwnedFd, offset: u64, len: u64 },
}

fn range(ranges: &[jlong], i: usize) -> Res<(u64, u64)> {
    let (Ok(a), Ok(b)) = (
        u64::try_from(ranges[2 * i]),
        u64::try_from(ranges[2 * i + 1]),
    ) else {
        return Err(Failure::Invalid(format!(
            "part {i}: negative position or length"
        )));
    };
    Ok((a, b))
}

fn read_bytes<'a>(
    env: &mut Env<'_>,
    obj: &JObject<'_>,
    i: usize,
    pos: u64,
    len: u64,
) -> Res<Bytes<'a>> {
    let end = pos
        .checked_add(len)
        .ok_or_else(|| Failure::Invalid(format!("part {i}: range overflows")))?;
    if let Ok(array) = env.as_cast::<JByteArray>(obj) {
        let size = array.len(env)? as u64;
        if end > size {
            return Err(Failure::Invalid(format!(
                "part {i}: {pos}+{len} outside {size} bytes"
            )));
        }
        let mut copy = vec![0i8; len as usize];
        array.get_region(env, pos as i32, &mut copy)?;
        return Ok(Bytes::Copied(copy.into_iter().map(|b| b as u8).collect()));
    }
    let buf = env.as_cast::<JByteBuffer>(obj)?;
    let addr = env.get_direct_buffer_address(&buf)?;
    let cap = env.get_direct_buffer_capacity(&buf)? as u64;
    if end > cap {
        return Err(Failure::Invalid(format!(
            "part {i}: {pos}+{len} outside {cap} bytes"
        )));
    }
    if len == 0 {
        return Ok(Bytes::Direct(&[]));
    }
    // SAFETY: [addr + pos, addr + end) lies inside the direct buffer's memory, which stays
    // allocated while the caller's reference keeps the buffer reachable: for the whole native
    // call. The Java API documents that the buffer must not change until the call returns.
    Ok(Bytes::Direct(unsafe {
        std::slice::from_raw_parts(addr.add(pos as usize), len as usize)
    }))
}

/// `Native.sendParts(dst, data, files, ranges, skip, timeoutNanos, cache, report)`: part `i` is the
/// file range `files[i]` @ (`ranges[2i]`, `ranges[2i+1]`) when `files[i]` is not null, else the
/// bytes of `data[i]` (a `byte[]` or a direct `ByteBuffer`) @ (position, length). WouldBlock is
/// not an exception: the report says so with the bytes moved.
#[allow(clippy::too_many_arguments)]
#[jni::jni_mangle("dev.zcopy.Native")]
pub fn send_parts<'local>(
    mut unowned: EnvUnowned<'local>,
    _class: JClass<'local>,
    dst: JObject<'local>,
    data: JObjectArray<'local>,
    files: JObjectArray<'local>,
    ranges: JLongArray<'local>,
    skip: jlong,
    timeout_nanos: jlong,
    cache: jint,
    report: JLongArray<'local>,
) {
    unowned
        .with_env(|env| -> Res<()> {
            if data.is_null() || files.is_null() || ranges.is_null() {
                return Err(Failure::Null("parts"));
            }
            let n = data.len(env)?;
            if files.len(env)? != n || ranges.len(env)? != 2 * n {
                return Err(Failure::Invalid("part arrays of different lengths".into()));
            }
            let skip = u64::try_from(skip).map_err(|_| Failure::Invalid("negative skip".into()))?;
            let mut r = vec![0 as jlong; 2 * n];
            ranges.get_region(env, 0, &mut r)?;
            let d = dup_fd(env, &dst, "dst")?;
            let mut read = Vec::with_capacity(n);
            for i in 0..n {
                let (a, b) = range(&r, i)?;
                let file = files.get_element(env, i)?;
                if file.is_null() {
                    let obj = data.get_element(env, i)?;
                    if obj.is_null() {
                        return Err(Failure::Null("part data"));
                    }
                    read.push(Read::Bytes(read_bytes(env, &obj, i, a, b)?));
                } else {
                    let fd = dup_fd(env, &file, "part file")?;
                    read.push(Read::File {
                        fd,
                        offset: a,
                        len: b,
                    });
                }
            }
            let parts: Vec<Part<'_>> = read
                .iter()
                .map(|p| match p {
                    Read::Bytes(Bytes::Copied(v)) => Part::Bytes(v),
                    Read::Bytes(Bytes::Direct(s)) => Part::Bytes(s),
                    Read::File { fd, offset, len } => Part::File {
                        fd: fd.as_fd(),
                        offset: *offset,
                        len: *len,
                    },
                })
                .collect();
            let opts = PartsOptions {
                timeout: opt_duration(timeout_nanos),
                // HotSpot ignores SIGPIPE (see `transfer`).
                host_ignores_sigpipe: true,
                skip,
                cache: cache_of(cache)?,
                ..PartsOptions::default()
            };
            let t0 = Instant::now();
            let outcome = zcopy_core::send_parts(&d, &parts, &opts);
            report_outcome(env, &report, outcome, t0.elapsed())
        })
        .resolve::<Throw>()
}
