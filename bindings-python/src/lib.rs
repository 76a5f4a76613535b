//! zcopy-python (filled by its issue).
