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
# A real cross-backend check on every commit: flex against ndarray (correctness of maps, losses
# and gradients; the speed rows at a tiny size only show that they run).
target/release/stad --quiet selftest --device ndarray --quick --json target/selftest-ndarray.json
# The GPU check's preparation (docs/gpu.md): it gathers the binary alone into its folder, and
# the command it prints runs here with --device cpu.
gpu_check_dir=target/gpu-check-test
gpu_command=$(bash scripts/gpu-check.sh --device cpu --quick --out "$gpu_check_dir" 2>/dev/null)
[[ "$(ls -A "$gpu_check_dir")" == "stad" ]] || { echo "gpu-check: $gpu_check_dir holds more than the binary" >&2; exit 1; }
rm -rf target/gpu-check-test-results
OUT=target/gpu-check-test-results bash -c "$gpu_command"
test -s target/gpu-check-test-results/selftest.json
test -s target/gpu-check-test-results/eval.json
