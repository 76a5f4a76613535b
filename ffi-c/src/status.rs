//! Errors to statuses, and the panic boundary.

use std::panic::{AssertUnwindSafe, catch_unwind};

use zcopy_core::Error;

use crate::types::zcopy_status;

/// A failed call as C sees it: a status and, for `ZCOPY_STATUS_OS`, an errno.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Failure {
    pub status: zcopy_status,
    pub errno: i32,
}

impl Failure {
    /// A failure without an errno.
    pub(crate) fn new(status: zcopy_status) -> Failure {
        Failure { status, errno: 0 }
    }

    /// `ZCOPY_STATUS_NULL_PARAMETER`.
    pub(crate) fn null() -> Failure {
        Failure::new(zcopy_status::NullParameter)
    }

    /// `ZCOPY_STATUS_INVALID_ARGUMENT`.
    pub(crate) fn invalid() -> Failure {
        Failure::new(zcopy_status::InvalidArgument)
    }
}

impl From<&Error> for Failure {
    fn from(e: &Error) -> Failure {
        let status = zcopy_status::from(e.code());
        // The contract promises an errno with every OS status; an OS error without a raw errno
        // does not come out of the syscall layer, but EIO is the honest answer if it ever did.
        let errno = if status == zcopy_status::Os {
            e.errno().unwrap_or(libc::EIO)
        } else {
            0
        };
        Failure { status, errno }
    }
}

impl From<Error> for Failure {
    fn from(e: Error) -> Failure {
        Failure::from(&e)
    }
}

/// Runs `f`, turning a panic into `Err(panic)`: panics never cross the C boundary.
pub(crate) fn catch<T>(f: impl FnOnce() -> T) -> Result<T, Failure> {
    catch_unwind(AssertUnwindSafe(f)).map_err(|_| Failure::new(zcopy_status::Panic))
}

/// The status of a call that has no report: the errno of an OS failure goes to `errno`.
pub(crate) fn finish(r: Result<(), Failure>) -> zcopy_status {
    match r {
        Ok(()) => zcopy_status::Ok,
        Err(f) => {
            if f.status == zcopy_status::Os {
                set_errno(f.errno);
            }
            f.status
        }
    }
}

fn set_errno(errno: i32) {
    // SAFETY: __errno_location returns the calling thread's errno slot, valid for the thread's
    // lifetime and writable by it.
    unsafe { *libc::__errno_location() = errno };
}

/// `timeout_ms` as the engine takes it: -1 waits, >= 0 is a deadline, < -1 is invalid.
pub(crate) fn timeout_from_ms(ms: i64) -> Result<Option<std::time::Duration>, Failure> {
    match ms {
        -1 => Ok(None),
        ms if ms >= 0 => Ok(Some(std::time::Duration::from_millis(ms.unsigned_abs()))),
        _ => Err(Failure::invalid()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn panics_become_panic_status() {
        let prev = std::panic::take_hook();
        std::panic::set_hook(Box::new(|_| {}));
        let r: Result<(), Failure> = catch(|| panic!("boom"));
        std::panic::set_hook(prev);
        assert_eq!(r, Err(Failure::new(zcopy_status::Panic)));
    }

    #[test]
    fn os_errors_carry_errno() {
        let f = Failure::from(Error::from_errno(libc::EPIPE));
        assert_eq!(
            f,
            Failure {
                status: zcopy_status::Os,
                errno: libc::EPIPE
            }
        );
        let f = Failure::from(Error::invalid("x"));
        assert_eq!(
            f,
            Failure {
                status: zcopy_status::InvalidArgument,
                errno: 0
            }
        );
    }

    #[test]
    fn timeouts() {
        assert_eq!(timeout_from_ms(-1), Ok(None));
        assert_eq!(timeout_from_ms(0), Ok(Some(std::time::Duration::ZERO)));
        assert_eq!(
            timeout_from_ms(1500),
            Ok(Some(std::time::Duration::from_millis(1500)))
        );
        assert_eq!(timeout_from_ms(-2), Err(Failure::invalid()));
        assert_eq!(timeout_from_ms(i64::MIN), Err(Failure::invalid()));
    }
}
