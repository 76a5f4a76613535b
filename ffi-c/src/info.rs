//! Names, version and capabilities.

use std::ffi::{CStr, c_char};

use zcopy_core::{ErrorCode, Method};

use crate::status::catch;

/// The crate version as a C string.
const VERSION: &CStr =
    match CStr::from_bytes_with_nul(concat!(env!("CARGO_PKG_VERSION"), "\0").as_bytes()) {
        Ok(v) => v,
        Err(_) => panic!("the version has no interior NUL"),
    };

const fn same(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

// The library reports core's version; the workspace gives both crates the same one.
const _: () = assert!(same(env!("CARGO_PKG_VERSION"), zcopy_core::VERSION));

fn status_name(code: ErrorCode) -> &'static CStr {
    match code {
        ErrorCode::Ok => c"OK",
        ErrorCode::Os => c"OS",
        ErrorCode::Unsupported => c"UNSUPPORTED",
        ErrorCode::InvalidArgument => c"INVALID_ARGUMENT",
        ErrorCode::WouldBlock => c"WOULD_BLOCK",
        ErrorCode::TimedOut => c"TIMED_OUT",
        ErrorCode::NullParameter => c"NULL_PARAMETER",
        ErrorCode::Panic => c"PANIC",
    }
}

fn method_name(m: Method) -> &'static CStr {
    match m {
        Method::Auto => c"auto",
        Method::ReadWrite => c"read_write",
        Method::Mmap => c"mmap",
        Method::Sendfile => c"sendfile",
        Method::Splice => c"splice",
        Method::CopyFileRange => c"copy_file_range",
        Method::MsgZerocopy => c"msg_zerocopy",
    }
}

/// The name of a status number: "OK", "OS", "UNSUPPORTED", "INVALID_ARGUMENT",
/// "WOULD_BLOCK", "TIMED_OUT", "NULL_PARAMETER", "PANIC"; "UNKNOWN" for any other number.
/// The string is static: never free it.
///
/// Threading: any thread.
#[unsafe(no_mangle)]
pub extern "C" fn zcopy_status_name(status: i32) -> *const c_char {
    ErrorCode::from_i32(status)
        .map_or(c"UNKNOWN", status_name)
        .as_ptr()
}

/// The name of a method number: "auto", "read_write", "mmap", "sendfile", "splice",
/// "copy_file_range", "msg_zerocopy"; "unknown" for any other number. The string is static:
/// never free it.
///
/// Threading: any thread.
#[unsafe(no_mangle)]
pub extern "C" fn zcopy_method_name(method: i32) -> *const c_char {
    Method::from_i32(method)
        .map_or(c"unknown", method_name)
        .as_ptr()
}

/// The library version, e.g. "0.1.0". The string is static: never free it.
///
/// Threading: any thread.
#[unsafe(no_mangle)]
pub extern "C" fn zcopy_version() -> *const c_char {
    VERSION.as_ptr()
}

/// The methods this kernel supports: bit `1 << method` is set for each (`ZCOPY_METHOD_AUTO`'s
/// bit 0 always is). Probed with real system calls on the first call, then cached.
///
/// Threading: any thread.
#[unsafe(no_mangle)]
pub extern "C" fn zcopy_capabilities() -> u32 {
    // A panic while probing leaves only Auto, which always works.
    catch(|| zcopy_core::capabilities().bits()).unwrap_or(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_match_core() {
        for code in ErrorCode::ALL {
            assert_eq!(status_name(code).to_str(), Ok(code.name()));
        }
        for m in Method::ALL {
            assert_eq!(method_name(m).to_str(), Ok(m.name()));
        }
        assert_eq!(VERSION.to_str(), Ok(zcopy_core::VERSION));
    }
}
