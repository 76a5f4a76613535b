# The two commands of the README: `make demo` (the main job) and `make test` (every check).
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
CARGO ?= cargo
PREFIX ?= /usr/local

.PHONY: demo test fmt clippy rust-test c-test python-test java-test build release install examples soak

demo: release
	./target/release/zcopy bench

release:
	$(CARGO) build --release -p zcopy-cli -p zcopy-ffi

build:
	$(CARGO) build --workspace

test: fmt clippy rust-test c-test python-test java-test
	@echo "make test: all checks passed"

fmt:
	$(CARGO) fmt --all -- --check

clippy:
	$(CARGO) clippy --workspace --all-targets -- -D warnings

rust-test:
	$(CARGO) test --workspace

c-test:
	bash tests/c/run.sh

python-test:
	bash bindings-python/scripts/test.sh

java-test:
	bash bindings-java/scripts/test.sh

install:
	bash ffi-c/scripts/install.sh "$(PREFIX)"

# Randomized cases of the adversarial suite (core/tests/adversarial.rs) for SOAK_MINUTES
# minutes (not part of `make test`); a failure prints its seed, replayed with
# `ZCOPY_SOAK_SEED=<seed> cargo test --release -p zcopy-core --test adversarial`.
SOAK_MINUTES ?= 20
soak:
	ZCOPY_SOAK_SECONDS=$$(( $(SOAK_MINUTES) * 60 )) $(CARGO) test --release -p zcopy-core --test adversarial

# The core and C ABI tests (Rust and C) under AddressSanitizer, built by the nightly toolchain
# into target/asan (not part of `make test`).
.PHONY: asan fuzz
asan:
	bash ffi-c/scripts/asan.sh

# cargo-fuzz on the C ABI's argument handling (ffi-c/fuzz) for FUZZ_SECONDS seconds (not part
# of `make test`); installs cargo-fuzz when missing; the corpus stays in target/fuzz.
FUZZ_SECONDS ?= 60
fuzz:
	FUZZ_SECONDS=$(FUZZ_SECONDS) bash ffi-c/scripts/fuzz.sh
