//! zcopy-jni (filled by its issue).
