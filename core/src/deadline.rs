//! One deadline for a whole call, turned into the timeout of each wait.

use std::time::{Duration, Instant};

/// The deadline has passed.
#[derive(Debug)]
pub(crate) struct Expired;

/// The time left before `deadline`, for `poll`: `Ok(None)` waits forever (no deadline),
/// `Ok(Some(d))` waits at most `d`, `Err(Expired)` once it has passed.
pub(crate) fn time_left(deadline: Option<Instant>) -> Result<Option<Duration>, Expired> {
    let Some(d) = deadline else { return Ok(None) };
    let now = Instant::now();
    if now >= d {
        Err(Expired)
    } else {
        Ok(Some(d - now))
    }
}
