#!/usr/bin/env bash
# Prepares a check of stad's CUDA path for a GPU machine that has no Rust toolchain
# (docs/gpu.md): builds `stad` here with `--features cuda`, puts the binary — and nothing
# else: the teacher is embedded, the synthetic data generated — into one folder, and prints
# the one command to run on the GPU machine, from the folder that holds this repository's
# root (the folder's path is relative to it).
#
# That command runs `stad selftest --device cuda --json` (correctness against the CPU in the
# same process, then speed at batch 8/32/128, 224²), then a short `stad train` + `stad eval`
# on the synthetic data set with their wall times. Results go to "$OUT" when it is set (the
# GPU machine's return folder), else to FOLDER/results; its exit code is the selftest's.
#
# Usage: scripts/gpu-check.sh [--out FOLDER] [--device cuda|cpu] [--quick]
#   --out FOLDER   where the binary goes (default: target/gpu-check), relative to the repo root
#   --device D     the device of the printed command (default: cuda; cpu tests it here)
#   --quick        seconds-long variant of the command (selftest --quick, a tiny training)
set -euo pipefail
cd "$(dirname "$0")/.."

out=target/gpu-check
device=cuda
quick=0
while [[ $# -gt 0 ]]; do
    case "$1" in
        --out) out="${2:?--out needs a folder}"; shift 2 ;;
        --device) device="${2:?--device needs cuda or cpu}"; shift 2 ;;
        --quick) quick=1; shift ;;
        -h|--help) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "error: unknown argument '$1' (see --help)" >&2; exit 2 ;;
    esac
done
case "$device" in
    cuda|cpu|ndarray) ;;
    *) echo "error: --device must be cuda, cpu or ndarray, got '$device'" >&2; exit 2 ;;
esac
case "$out" in
    /*|*..*) echo "error: --out must be a folder inside the repository, got '$out'" >&2; exit 2 ;;
esac

# The build scripts/test.sh tests (it puts the `stad` binary in target/release): after the
# tests it is a no-op. (`cargo build -p stad-cli --features cuda` would resolve the features
# of shared dependencies without the dev-dependencies, and recompile stad and below.)
cargo test --release --workspace --all-targets --features cuda --no-run >&2

rm -rf "$out"
mkdir -p "$out"
cp target/release/stad "$out/stad"

if [[ $quick == 1 ]]; then
    selftest_args="--quick"
    train_args="--epochs 1 --image-size 64 --batch-size 8"
else
    selftest_args=""
    train_args="--epochs 5 --image-size 224 --batch-size 32"
fi
bin="$out/stad"
echo "gathered $(du -h "$bin" | cut -f1) in $out/ (the binary only); run this from the repository root:" >&2
printf '%s\n' "R=\"\${OUT:-$out/results}\"; mkdir -p \"\$R\" && $bin selftest --device $device $selftest_args --json \"\$R/selftest.json\" | tee \"\$R/selftest.txt\"; s=\${PIPESTATUS[0]}; { time $bin --quiet train --method stfpm --format synthetic --data \"\$R/synthetic\" --out \"\$R/run\" --device $device $train_args ; } 2> \"\$R/train-time.txt\" && { time $bin --quiet eval --run \"\$R/run\" --json \"\$R/eval.json\" --device $device ; } 2> \"\$R/eval-time.txt\"; t=\$?; tail -n 4 \"\$R/train-time.txt\" \"\$R/eval-time.txt\"; [ \$s -eq 0 ] && [ \$t -eq 0 ]"
