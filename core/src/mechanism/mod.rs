//! The mechanisms: each moves bytes from `job.src` to `job.dst` with one kind of syscall until
//! the count is reached or the source ends, recording every delivered byte in the job.

mod copy_range;
mod mmap;
pub(crate) mod msg_zerocopy;
mod read_write;
mod sendfile;
mod splice;

use crate::job::{Job, Step, Stop};
use crate::method::Method;

/// Runs one method on the job.
pub(crate) fn run(method: Method, job: &mut Job<'_>) -> Step {
    match method {
        Method::ReadWrite => read_write::run(job),
        Method::Mmap => mmap::run(job),
        Method::Sendfile => sendfile::run(job),
        Method::Splice => splice::run(job),
        Method::CopyFileRange => copy_range::run(job),
        Method::MsgZerocopy => msg_zerocopy::run(job),
        Method::Auto => Err(Stop::Fallback {
            errno: None,
            reason: "Auto is not a mechanism".into(),
        }),
    }
}
