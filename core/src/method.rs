//! The transfer methods, with their stable numbers and names.

use std::fmt;
use std::str::FromStr;

/// How bytes are moved. Numbers and names are stable and shared by every binding.
#[repr(i32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Method {
    /// Pick the cheapest correct path for the fd pair and fall back at run time.
    #[default]
    Auto = 0,
    /// `read(2)` + `write(2)` through a user-space buffer: works for everything.
    ReadWrite = 1,
    /// `mmap(2)` the source file, `write(2)` from the mapping.
    Mmap = 2,
    /// `sendfile(2)`: file -> anything, in the kernel.
    Sendfile = 3,
    /// `splice(2)`, through a pooled pipe unless one side is a pipe.
    Splice = 4,
    /// `copy_file_range(2)`: file -> file, reflink or in-kernel copy.
    CopyFileRange = 5,
    /// `send(2)` with `MSG_ZEROCOPY` from a mapping of the source file, to a TCP socket.
    MsgZerocopy = 6,
}

impl Method {
    /// Every method, in numeric order.
    pub const ALL: [Method; 7] = [
        Method::Auto,
        Method::ReadWrite,
        Method::Mmap,
        Method::Sendfile,
        Method::Splice,
        Method::CopyFileRange,
        Method::MsgZerocopy,
    ];

    /// The explicit methods (everything but Auto).
    pub const EXPLICIT: [Method; 6] = [
        Method::ReadWrite,
        Method::Mmap,
        Method::Sendfile,
        Method::Splice,
        Method::CopyFileRange,
        Method::MsgZerocopy,
    ];

    /// The stable lower-case name ("auto", "read_write", ...).
    pub fn name(self) -> &'static str {
        match self {
            Method::Auto => "auto",
            Method::ReadWrite => "read_write",
            Method::Mmap => "mmap",
            Method::Sendfile => "sendfile",
            Method::Splice => "splice",
            Method::CopyFileRange => "copy_file_range",
            Method::MsgZerocopy => "msg_zerocopy",
        }
    }

    /// The method with this number, if any.
    pub fn from_i32(n: i32) -> Option<Method> {
        Method::ALL.into_iter().find(|m| *m as i32 == n)
    }

    /// The method with this name, if any.
    pub fn from_name(name: &str) -> Option<Method> {
        Method::ALL.into_iter().find(|m| m.name() == name)
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Method {
    type Err = crate::Error;

    fn from_str(s: &str) -> Result<Method, crate::Error> {
        Method::from_name(s).ok_or_else(|| {
            let names: Vec<&str> = Method::ALL.iter().map(|m| m.name()).collect();
            crate::Error::invalid(format!(
                "unknown method {s:?} (expected one of {})",
                names.join(", ")
            ))
        })
    }
}
