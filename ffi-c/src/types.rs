//! The C types: status and method enums, options, reports, constants.

use zcopy_core::{ErrorCode, Method};

/// `count` value meaning "until the source's end of file".
pub const ZCOPY_TO_EOF: u64 = u64::MAX;

/// `flags` bit: an explicit method may fall back to the next method of its chain instead of
/// returning `ZCOPY_STATUS_UNSUPPORTED`. Auto always falls back.
pub const ZCOPY_FLAG_ALLOW_FALLBACK: u32 = 1u32;

/// `flags` bit (`zcopy_transfer`, `zcopy_send_parts`): release a regular-file source's pages
/// from the page cache behind the transfer (POSIX_FADV_DONTNEED on what was delivered), so a
/// file streamed once does not evict everything else. Not with `ZCOPY_FLAG_CACHE_DIRECT`.
pub const ZCOPY_FLAG_CACHE_DROP_BEHIND: u32 = 2u32;

/// `flags` bit: read a regular-file source with O_DIRECT into aligned buffers (plus
/// drop-behind), bypassing the page cache, as nginx's `directio`; to a socket, an 8 MiB range
/// already wholly in the page cache is sent from there with sendfile instead of being read
/// again from the disk. Only `ZCOPY_METHOD_AUTO` and
/// `ZCOPY_METHOD_READ_WRITE` read that way (another method is `ZCOPY_STATUS_INVALID_ARGUMENT`);
/// where the file system refuses O_DIRECT the transfer reads through the page cache with
/// drop-behind, and `report->fallbacks` counts that.
pub const ZCOPY_FLAG_CACHE_DIRECT: u32 = 4u32;

/// The status every fallible function returns. The numbers never change.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum zcopy_status {
    /// Success.
    Ok = 0,
    /// A system call failed. The errno is in the report's `os_errno`; the sender functions,
    /// which have no report, set the calling thread's `errno` instead.
    Os = 1,
    /// The method cannot work for this descriptor pair or on this kernel. Nothing was
    /// consumed from a pipe or socket source.
    Unsupported = 2,
    /// A value passed in is out of range: a negative descriptor, `offset < -1`,
    /// `timeout_ms < -1`, an unknown method or flag, a descriptor of the wrong kind.
    InvalidArgument = 3,
    /// A non-blocking descriptor would block and `timeout_ms` was 0. The report has the bytes
    /// moved so far; call again to resume.
    WouldBlock = 4,
    /// The deadline passed. The report has the bytes moved so far; call again to resume.
    TimedOut = 5,
    /// A required pointer was NULL. Nothing happened.
    NullParameter = 6,
    /// The library hit a bug (a Rust panic) and stopped the call. Please report it.
    Panic = 7,
}

/// How bytes are moved. The numbers never change.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum zcopy_method {
    /// Pick the cheapest correct path for the descriptor pair and fall back at run time.
    Auto = 0,
    /// `read(2)` + `write(2)` through a buffer: works for everything.
    ReadWrite = 1,
    /// `mmap(2)` the source file, `write(2)` from the mapping.
    Mmap = 2,
    /// `sendfile(2)`: file -> anything.
    Sendfile = 3,
    /// `splice(2)` through a pipe (file -> socket/pipe, socket -> file, pipe <-> anything).
    Splice = 4,
    /// `copy_file_range(2)`: file -> file.
    CopyFileRange = 5,
    /// `send(2)` with `MSG_ZEROCOPY` from a mapping of the source file, to a TCP socket.
    MsgZerocopy = 6,
}

/// Options of `zcopy_transfer`. Initialise with `zcopy_options_init`, then change fields.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct zcopy_options {
    /// `ZCOPY_METHOD_AUTO` by default.
    pub method: zcopy_method,
    /// -1 (default): use and advance the source's file position. >= 0: read from there; the
    /// source's file position is unchanged. < -1: `ZCOPY_STATUS_INVALID_ARGUMENT`.
    pub offset: i64,
    /// At most this many bytes. `ZCOPY_TO_EOF` (default): until the source's end of file
    /// (`/dev/zero` never ends: give it a count). 0: immediate success.
    pub count: u64,
    /// One deadline for the whole call, covering every wait on either descriptor.
    /// -1 (default): wait as long as it takes; 0: return `ZCOPY_STATUS_WOULD_BLOCK` instead of
    /// waiting; > 0: return `ZCOPY_STATUS_TIMED_OUT` after that many milliseconds.
    pub timeout_ms: i64,
    /// `ZCOPY_FLAG_*` bits (0 by default); unknown bits are `ZCOPY_STATUS_INVALID_ARGUMENT`.
    pub flags: u32,
}

/// What `zcopy_transfer` did. Written whenever the pointer is non-NULL, on every status.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct zcopy_report {
    /// Bytes that reached the destination, on success and on every error.
    pub bytes: u64,
    /// The method that moved the bytes (the requested one when nothing moved).
    pub method: zcopy_method,
    /// Every system call the call issued.
    pub syscalls: u64,
    /// Methods given up on during the call.
    pub fallbacks: u32,
    /// `MSG_ZEROCOPY` sends completed ...
    pub zc_sends: u64,
    /// ... and how many of them the kernel copied anyway (all of them on loopback).
    pub zc_copied: u64,
    /// The errno when the status is `ZCOPY_STATUS_OS`, else 0.
    pub os_errno: i32,
    /// Bytes taken from a pipe or socket source that did not reach the destination and cannot
    /// be given back (an error after the read, or a stop with bytes still in the library's
    /// pipe). 0 on success and for file sources, whose position gives them back.
    pub undelivered: u64,
    /// `MSG_ZEROCOPY` sends whose completion had not arrived when the call returned early:
    /// their notifications arrive later on the socket's error queue (`poll` reports POLLERR
    /// until they are read with `recvmsg(MSG_ERRQUEUE)`, or drained by the next msg_zerocopy
    /// transfer on the socket).
    pub zc_pending: u64,
}

/// One piece of a response for `zcopy_send_parts`: bytes from memory or a range of a file.
/// Fixed size (32 bytes on 64-bit targets); fields are plain integers and a pointer.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct zcopy_part {
    /// A bytes part: the bytes (may be NULL only when `len` is 0). A file part: ignored.
    pub data: *const u8,
    /// -1 for a bytes part; otherwise the descriptor of a regular file to send a range of
    /// (borrowed for the call; its file position is neither used nor moved).
    pub fd: i32,
    /// Reserved: must be 0.
    pub reserved: u32,
    /// A file part: where the range starts (>= 0). A bytes part: must be 0.
    pub offset: i64,
    /// Bytes in the part.
    pub len: u64,
}

/// What `zcopy_relay` did. Written whenever the pointer is non-NULL, on every status.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct zcopy_relay_report {
    /// Bytes delivered from `a` to `b`, also on error.
    pub a_to_b: u64,
    /// Bytes delivered from `b` to `a`, also on error.
    pub b_to_a: u64,
    /// The errno when the status is `ZCOPY_STATUS_OS`, else 0.
    pub os_errno: i32,
    /// 1 when at least one direction found the per-user pipe budget exhausted
    /// (`fs.pipe-user-pages-soft`) and moved its bytes with recv/send through a 64 KiB buffer
    /// instead of splice through pipes, else 0. Set on errors too once the directions have
    /// started; 0 on every error that happened before a direction started (a bad argument, a
    /// descriptor that is not a stream socket). It fills what was padding after `os_errno`, so
    /// the struct is still 24 bytes and memory sized by older callers still fits.
    pub buffered: i32,
}

/// Counters of a `zcopy_sender`, from `zcopy_sender_get_stats`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct zcopy_sender_stats {
    /// Ids handed out so far: the next `zcopy_sender_send` gets this id.
    pub sent: u64,
    /// Every id below this has completed; its buffer may be reused or freed.
    pub done: u64,
    /// Sends not yet completed (`sent - done`).
    pub pending: u64,
    /// Kernel `MSG_ZEROCOPY` sends whose completion arrived (a large buffer takes several) ...
    pub completions: u64,
    /// ... and how many of them the kernel copied instead of sharing pages.
    pub copied: u64,
}

/// cbindgen:ignore
impl zcopy_options {
    /// The documented defaults.
    pub const DEFAULT: zcopy_options = zcopy_options {
        method: zcopy_method::Auto,
        offset: -1,
        count: ZCOPY_TO_EOF,
        timeout_ms: -1,
        flags: 0,
    };
}

/// cbindgen:ignore
impl zcopy_report {
    /// Nothing happened.
    pub const EMPTY: zcopy_report = zcopy_report {
        bytes: 0,
        method: zcopy_method::Auto,
        syscalls: 0,
        fallbacks: 0,
        zc_sends: 0,
        zc_copied: 0,
        os_errno: 0,
        undelivered: 0,
        zc_pending: 0,
    };
}

/// cbindgen:ignore
impl zcopy_relay_report {
    /// Nothing happened.
    pub const EMPTY: zcopy_relay_report = zcopy_relay_report {
        a_to_b: 0,
        b_to_a: 0,
        os_errno: 0,
        buffered: 0,
    };
}

impl From<Method> for zcopy_method {
    fn from(m: Method) -> zcopy_method {
        match m {
            Method::Auto => zcopy_method::Auto,
            Method::ReadWrite => zcopy_method::ReadWrite,
            Method::Mmap => zcopy_method::Mmap,
            Method::Sendfile => zcopy_method::Sendfile,
            Method::Splice => zcopy_method::Splice,
            Method::CopyFileRange => zcopy_method::CopyFileRange,
            Method::MsgZerocopy => zcopy_method::MsgZerocopy,
        }
    }
}

impl From<ErrorCode> for zcopy_status {
    /// The one mapping from core's codes to C statuses: exhaustive, so a new code breaks the
    /// build until it is mapped here.
    fn from(code: ErrorCode) -> zcopy_status {
        match code {
            ErrorCode::Ok => zcopy_status::Ok,
            ErrorCode::Os => zcopy_status::Os,
            ErrorCode::Unsupported => zcopy_status::Unsupported,
            ErrorCode::InvalidArgument => zcopy_status::InvalidArgument,
            ErrorCode::WouldBlock => zcopy_status::WouldBlock,
            ErrorCode::TimedOut => zcopy_status::TimedOut,
            ErrorCode::NullParameter => zcopy_status::NullParameter,
            ErrorCode::Panic => zcopy_status::Panic,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_match_core() {
        for code in ErrorCode::ALL {
            assert_eq!(zcopy_status::from(code) as i32, code as i32);
        }
        for m in Method::ALL {
            assert_eq!(zcopy_method::from(m) as i32, m as i32);
        }
    }

    #[test]
    fn relay_report_keeps_its_size() {
        // `buffered` went into the padding: callers built against the older header allocate 24.
        assert_eq!(std::mem::size_of::<zcopy_relay_report>(), 24);
    }
}
