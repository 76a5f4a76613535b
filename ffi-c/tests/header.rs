//! include/zcopy.h must be what cbindgen generates from this crate today.
//!
//! `ZCOPY_BLESS=1 cargo test -p zcopy-ffi --test header` rewrites it.

use std::path::Path;

#[test]
fn header_is_fresh() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let config =
        cbindgen::Config::from_file(dir.join("cbindgen.toml")).expect("ffi-c/cbindgen.toml parses");
    let bindings = cbindgen::Builder::new()
        .with_config(config)
        .with_src(dir.join("src/lib.rs"))
        .generate()
        .expect("cbindgen generates the header");
    let mut fresh = Vec::new();
    bindings.write(&mut fresh);
    let path = dir.join("../include/zcopy.h");
    if std::env::var_os("ZCOPY_BLESS").is_some_and(|v| v == "1") {
        std::fs::write(&path, &fresh).expect("write include/zcopy.h");
        return;
    }
    let current = std::fs::read(&path).unwrap_or_default();
    assert!(
        current == fresh,
        "include/zcopy.h is stale (or missing): regenerate it with \
         `ZCOPY_BLESS=1 cargo test -p zcopy-ffi --test header` and commit the result"
    );
}
