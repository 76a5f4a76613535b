//! zcopy-ffi: the C ABI of zcopy, built as `libzcopy.so` and `libzcopy.a`.
//!
//! Every entry point is a thin shell over a safe inner function: it checks pointers and
//! numbers, reads the C structs, calls `zcopy-core`, catches panics (`ZCOPY_STATUS_PANIC`) and
//! writes the outputs. No transfer logic lives here.
//!
//! `include/zcopy.h` is generated from this crate by cbindgen (see `cbindgen.toml` and
//! `tests/header.rs`); the doc comments below are the header's documentation, so each one
//! states who owns the descriptors and which threads may call it.
#![allow(non_camel_case_types)]

// cbindgen writes items in the order it reads the modules; the blank lines keep rustfmt from
// sorting them, so the header reads types, transfer, parts, relay, sender, then the small
// queries.
mod types;

mod transfer;

mod parts;

mod relay;

mod sender;

mod info;

mod status;

pub use info::{zcopy_capabilities, zcopy_method_name, zcopy_status_name, zcopy_version};
pub use parts::zcopy_send_parts;
pub use relay::{zcopy_relay, zcopy_relay_with_timeout};
pub use sender::{
    zcopy_sender, zcopy_sender_close, zcopy_sender_free, zcopy_sender_get_stats, zcopy_sender_new,
    zcopy_sender_poll, zcopy_sender_send,
};
pub use transfer::{zcopy_options_init, zcopy_transfer};
pub use types::{
    ZCOPY_FLAG_ALLOW_FALLBACK, ZCOPY_FLAG_CACHE_DIRECT, ZCOPY_FLAG_CACHE_DROP_BEHIND, ZCOPY_TO_EOF,
    zcopy_method, zcopy_options, zcopy_part, zcopy_relay_report, zcopy_report, zcopy_sender_stats,
    zcopy_status,
};
