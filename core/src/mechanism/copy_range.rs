//! `copy_file_range(2)`: file to file, in the kernel (reflinks or server-side copy where the
//! file system can).

use crate::job::{Job, Pos, Side, Step, Stop};
use crate::sys;

pub(crate) fn run(job: &mut Job<'_>) -> Step {
    let mut first = true;
    loop {
        if !job.more()? {
            return Ok(());
        }
        let want = job.want(sys::MAX_RW);
        let mut out = job.dst_pos;
        let r = match job.pos {
            Pos::Kernel => sys::copy_file_range(job.src, None, job.dst, out.as_mut(), want),
            _ => {
                let mut off = job.offset().unwrap_or(0);
                sys::copy_file_range(job.src, Some(&mut off), job.dst, out.as_mut(), want)
            }
        };
        match r {
            // procfs and sysfs files report size 0 and the kernel "copies" 0 bytes from them:
            // one byte read tells a really empty file from one the next method can read.
            Ok(0) if first && job.si.size == 0 && job.has_data()? => {
                return Err(Stop::Fallback {
                    errno: None,
                    reason: "copy_file_range returned 0 on a file whose size reads as 0 but has data (procfs?)".into(),
                });
            }
            Ok(0) => return Ok(()),
            Ok(n) => job.delivered(n),
            Err(e) => job.handle(e, Side::Dst)?,
        }
        first = false;
    }
}
