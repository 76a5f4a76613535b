//! The zcopy command.
fn main() {}
