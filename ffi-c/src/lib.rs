//! zcopy-ffi (filled by its issue).
