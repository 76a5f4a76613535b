//! The one error type of the engine, and the stable numeric codes every binding maps from.
//!
//! Every error carries the [`Report`] of what the call did before it failed, so a caller always
//! knows how many bytes reached the destination (the C ABI, Python and Java all expose it).

use std::fmt;
use std::io;

use crate::report::Report;

/// Stable numbers shared by every language (see the error table in README.md).
///
/// Numbers never change once released; new variants get new numbers.
#[repr(i32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// Success.
    Ok = 0,
    /// The kernel said no; the errno is in the error.
    Os = 1,
    /// The method cannot work for this fd pair or on this kernel.
    Unsupported = 2,
    /// A value the caller passed is out of range or contradictory.
    InvalidArgument = 3,
    /// A non-blocking fd would block and the timeout was zero.
    WouldBlock = 4,
    /// The deadline passed before the transfer finished.
    TimedOut = 5,
    /// A required pointer was NULL (C ABI only).
    NullParameter = 6,
    /// A panic was caught at a language boundary.
    Panic = 7,
}

impl ErrorCode {
    /// Every code, in numeric order.
    pub const ALL: [ErrorCode; 8] = [
        ErrorCode::Ok,
        ErrorCode::Os,
        ErrorCode::Unsupported,
        ErrorCode::InvalidArgument,
        ErrorCode::WouldBlock,
        ErrorCode::TimedOut,
        ErrorCode::NullParameter,
        ErrorCode::Panic,
    ];

    /// The stable upper-case name ("OK", "OS", ...), as in the C header and errors.tsv.
    pub fn name(self) -> &'static str {
        match self {
            ErrorCode::Ok => "OK",
            ErrorCode::Os => "OS",
            ErrorCode::Unsupported => "UNSUPPORTED",
            ErrorCode::InvalidArgument => "INVALID_ARGUMENT",
            ErrorCode::WouldBlock => "WOULD_BLOCK",
            ErrorCode::TimedOut => "TIMED_OUT",
            ErrorCode::NullParameter => "NULL_PARAMETER",
            ErrorCode::Panic => "PANIC",
        }
    }

    /// The code for a number, if it is one.
    pub fn from_i32(n: i32) -> Option<ErrorCode> {
        ErrorCode::ALL.into_iter().find(|c| *c as i32 == n)
    }
}

/// What went wrong.
#[derive(Debug, thiserror::Error)]
pub enum ErrorKind {
    /// A syscall failed; the `io::Error` holds the errno.
    #[error("{0}")]
    Os(#[source] io::Error),
    /// The requested method does not apply to this fd pair or kernel.
    #[error("unsupported: {0}")]
    Unsupported(String),
    /// The caller passed a bad value.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// The operation would block and the timeout was zero.
    #[error("operation would block")]
    WouldBlock,
    /// The deadline passed.
    #[error("timed out")]
    TimedOut,
}

/// An engine error together with the progress made before it.
#[derive(Debug)]
pub struct Error {
    /// What went wrong.
    pub kind: ErrorKind,
    /// What the call did before failing: `report.bytes` reached the destination.
    pub report: Report,
}

impl Error {
    /// An error with an empty report (nothing moved).
    pub fn new(kind: ErrorKind) -> Error {
        Error {
            kind,
            report: Report::default(),
        }
    }

    /// An OS error from an errno value.
    pub fn from_errno(errno: i32) -> Error {
        Error::new(ErrorKind::Os(io::Error::from_raw_os_error(errno)))
    }

    /// A bad argument.
    pub fn invalid(msg: impl Into<String>) -> Error {
        Error::new(ErrorKind::InvalidArgument(msg.into()))
    }

    /// An unsupported method / fd pair.
    pub fn unsupported(msg: impl Into<String>) -> Error {
        Error::new(ErrorKind::Unsupported(msg.into()))
    }

    /// The stable code for this error.
    pub fn code(&self) -> ErrorCode {
        match self.kind {
            ErrorKind::Os(_) => ErrorCode::Os,
            ErrorKind::Unsupported(_) => ErrorCode::Unsupported,
            ErrorKind::InvalidArgument(_) => ErrorCode::InvalidArgument,
            ErrorKind::WouldBlock => ErrorCode::WouldBlock,
            ErrorKind::TimedOut => ErrorCode::TimedOut,
        }
    }

    /// The errno for `Os` errors (and for `Unsupported` errors caused by one), else `None`.
    pub fn errno(&self) -> Option<i32> {
        match &self.kind {
            ErrorKind::Os(e) => e.raw_os_error(),
            _ => None,
        }
    }

    /// Bytes that reached the destination before the error.
    pub fn bytes(&self) -> u64 {
        self.report.bytes
    }

    /// The same error with this report attached.
    pub(crate) fn with_report(mut self, report: Report) -> Error {
        self.report = report;
        self
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.kind)?;
        if self.report.bytes > 0 {
            write!(f, " (after {} bytes)", self.report.bytes)?;
        }
        if self.report.undelivered > 0 {
            write!(
                f,
                "; {} bytes taken from the source were not delivered",
                self.report.undelivered
            )?;
        }
        Ok(())
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.kind {
            ErrorKind::Os(e) => Some(e),
            _ => None,
        }
    }
}

impl From<io::Error> for Error {
    fn from(e: io::Error) -> Error {
        Error::new(ErrorKind::Os(e))
    }
}

/// The engine's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
