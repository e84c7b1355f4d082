#!/usr/bin/env bash
# The whole test suite, release-built (the numeric tests are heavy), with the CUDA backend
# compiled in: one build serves the tests, the compile check of `--device cuda` and the GPU
# check below (a separate CUDA build would recompile stad-cli and relink every binary above
# it, ~11 minutes on 2 cores). The build without `cuda` is the README's first command.
# Shared fixtures are found through STAD_SHARED (default: ../shared).
set -euo pipefail
cd "$(dirname "$0")/.."
phase() { printf '\n==> [%s] %s\n' "$(date +%T)" "$*" >&2; }
phase "tests (release, --features cuda)"
cargo test --release --workspace --all-targets --features cuda
phase "doc tests"
cargo test --release --workspace --doc --features cuda
# A real cross-backend check on every commit: flex against ndarray (correctness of maps, losses
# and gradients; the speed rows at a tiny size only show that they run).
phase "stad selftest --device ndarray --quick"
target/release/stad --quiet selftest --device ndarray --quick --json target/selftest-ndarray.json
# The GPU check's preparation (docs/gpu.md): its build is the one above (a no-op here); it
# gathers the binary alone into its folder, and the command it prints runs here with --device cpu.
phase "scripts/gpu-check.sh --device cpu --quick, and the command it prints"
gpu_check_dir=target/gpu-check-test
gpu_command=$(bash scripts/gpu-check.sh --device cpu --quick --out "$gpu_check_dir" 2>/dev/null)
[[ "$(ls -A "$gpu_check_dir")" == "stad" ]] || { echo "gpu-check: $gpu_check_dir holds more than the binary" >&2; exit 1; }
rm -rf target/gpu-check-test-results
OUT=target/gpu-check-test-results bash -c "$gpu_command"
test -s target/gpu-check-test-results/selftest.json
test -s target/gpu-check-test-results/eval.json
phase "done"
