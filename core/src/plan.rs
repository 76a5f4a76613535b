//! Which method for which fd pair, and the fallback chain.
