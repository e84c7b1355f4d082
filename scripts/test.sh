#!/usr/bin/env bash
# The whole test suite, release-built (the numeric tests are heavy), then a compile-only check
# of the CUDA build. Shared fixtures are found through STAD_SHARED (default: ../shared).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test --release --workspace --all-targets
cargo test --release --workspace --doc
# --all-targets keeps the feature unification of the test build (dev-dependencies included),
# so only stad's own crates recompile for the check.
cargo build --release --workspace --all-targets --features cuda
