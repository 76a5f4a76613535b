//! Which mechanisms this kernel supports, probed once per process with real syscalls on
//! memfds, a pipe and a TCP socket.

use std::os::fd::AsFd;
use std::sync::OnceLock;

use crate::method::Method;
use crate::sys;

/// The set of explicit methods the running kernel supports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Capabilities {
    bits: u32,
}

impl Capabilities {
    /// Whether `method` works on this kernel (Auto always does).
    pub fn supports(&self, method: Method) -> bool {
        self.bits & (1 << method as u32) != 0
    }

    /// Bit `1 << method` set for each supported method (Auto's bit 0 is always set).
    pub fn bits(&self) -> u32 {
        self.bits
    }

    /// The supported explicit methods.
    pub fn methods(&self) -> Vec<Method> {
        Method::EXPLICIT
            .into_iter()
            .filter(|m| self.supports(*m))
            .collect()
    }
}

/// The capabilities of this kernel, probed on the first call and cached.
pub fn capabilities() -> Capabilities {
    static CAPS: OnceLock<Capabilities> = OnceLock::new();
    *CAPS.get_or_init(probe)
}

fn probe() -> Capabilities {
    let mut bits = 1 << Method::Auto as u32 | 1 << Method::ReadWrite as u32;
    let set = |bits: &mut u32, m: Method, ok: bool| {
        if ok {
            *bits |= 1 << m as u32;
        }
    };
    let src = sys::memfd(c"zcopy-probe-src")
        .ok()
        .filter(|f| sys::write(f.as_fd(), b"z", None).is_ok());
    let dst = sys::memfd(c"zcopy-probe-dst").ok();
    if let (Some(src), Some(dst)) = (&src, &dst) {
        let mut off = 0;
        set(
            &mut bits,
            Method::CopyFileRange,
            sys::copy_file_range(src.as_fd(), Some(&mut off), dst.as_fd(), None, 1)
                .is_ok_and(|n| n == 1),
        );
        set(
            &mut bits,
            Method::Mmap,
            sys::Mapping::new(src.as_fd(), 0, 1).is_ok(),
        );
        if let Ok((r, w)) = sys::pipe() {
            let mut off = 0;
            set(
                &mut bits,
                Method::Sendfile,
                sys::sendfile(w.as_fd(), src.as_fd(), Some(&mut off), 1).is_ok_and(|n| n == 1),
            );
            let mut off = 0;
            let into = sys::splice(src.as_fd(), Some(&mut off), w.as_fd(), None, 1, 0)
                .is_ok_and(|n| n == 1);
            set(
                &mut bits,
                Method::Splice,
                into && sys::splice(r.as_fd(), None, dst.as_fd(), None, 2, 0).is_ok(),
            );
        }
    }
    let zc = sys::tcp_socket().is_ok_and(|s| {
        sys::setsockopt_int(s.as_fd(), libc::SOL_SOCKET, libc::SO_ZEROCOPY, 1).is_ok()
    });
    let mmap = bits & 1 << Method::Mmap as u32 != 0;
    set(&mut bits, Method::MsgZerocopy, zc && mmap);
    Capabilities { bits }
}
