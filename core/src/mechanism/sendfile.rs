//! `sendfile(2)`: a file (or block device) to anything, inside the kernel.

use crate::job::{Job, Pos, Side, Step};
use crate::sys;

pub(crate) fn run(job: &mut Job<'_>) -> Step {
    loop {
        if !job.more()? {
            return Ok(());
        }
        let want = job.want(sys::MAX_RW);
        let r = match job.pos {
            // NULL offset: the kernel advances the source position by exactly what it sent.
            Pos::Kernel => sys::sendfile(job.dst, job.src, None, want),
            _ => {
                let mut off = job.offset().unwrap_or(0);
                sys::sendfile(job.dst, job.src, Some(&mut off), want)
            }
        };
        match r {
            Ok(0) => return Ok(()),
            Ok(n) => job.delivered_of(n, want)?,
            Err(e) => job.handle(e, Side::Dst)?,
        }
    }
}
