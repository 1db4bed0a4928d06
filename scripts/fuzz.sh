#!/usr/bin/env bash
# Runs the cargo-fuzz targets in fuzz/ one after another, SECONDS each (default 60), and
# prints executions and crashes per target. Not part of CI: building cargo-fuzz and the
# targets alone takes longer than CI's budget allows.
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]      e.g. scripts/fuzz.sh 120, scripts/fuzz.sh 30 scim_path
#
# Toolchain: the nightly toolchain when rustup has one; otherwise the default (stable)
# toolchain with RUSTC_BOOTSTRAP=1, which unlocks the -Z flags cargo-fuzz passes (no download
# needed). cargo-fuzz is installed from crates.io when missing.
#
# Environment: FUZZ_SANITIZER (default `none`: our crates forbid unsafe code; `address` for
# ASan, about 2-3 times slower), FUZZ_JOBS (parallel libFuzzer jobs per target, default 1),
# FUZZ_ARGS (extra libFuzzer flags).
#
# Inputs: fuzz/corpus/<target> (kept between runs, git-ignored) plus the checked-in seeds in
# fuzz/seeds/<target>; job_file also reads the app templates and examples in config/.
# Crashes land in fuzz/artifacts/<target>/; reproduce one with
#   cargo +nightly fuzz run <target> fuzz/artifacts/<target>/<file>   (from fuzz/)
# Exit status: 0 when no target crashed, 1 otherwise.
set -euo pipefail

seconds="${1:-60}"
if [ "$#" -gt 0 ]; then shift; fi
case "$seconds" in
  '' | *[!0-9]*) echo "usage: $0 [SECONDS] [TARGET...]" >&2; exit 2 ;;
esac
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root/fuzz"

toolchain=()
if rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
  toolchain=(+nightly)
  echo "fuzz: toolchain nightly ($(rustc +nightly --version))"
else
  export RUSTC_BOOTSTRAP=1
  echo "fuzz: no nightly toolchain; $(rustc --version) with RUSTC_BOOTSTRAP=1"
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "fuzz: installing cargo-fuzz from crates.io"
  cargo install --locked cargo-fuzz
fi

sanitizer="${FUZZ_SANITIZER:-none}"
jobs="${FUZZ_JOBS:-1}"
# -a: debug assertions, so arithmetic overflow panics instead of wrapping.
build=(--sanitizer "$sanitizer" --debug-assertions)

if [ "$#" -gt 0 ]; then
  targets=("$@")
else
  mapfile -t targets < <(cargo "${toolchain[@]}" fuzz list)
fi
echo "fuzz: building ${targets[*]} (sanitizer $sanitizer)"
cargo "${toolchain[@]}" fuzz build "${build[@]}" >/dev/null

logs="$root/fuzz/logs"
mkdir -p "$logs"
summary=()
failed=0
for t in "${targets[@]}"; do
  mkdir -p "corpus/$t" "artifacts/$t"
  inputs=("corpus/$t")
  [ -d "seeds/$t" ] && inputs+=("seeds/$t")
  if [ "$t" = job_file ]; then inputs+=("$root/config/apps" "$root/config/examples"); fi
  before="$(find "artifacts/$t" -type f | wc -l)"
  log="$logs/$t.log"
  echo "fuzz: $t for ${seconds}s (log $log)"
  rc=0
  # shellcheck disable=SC2086 # FUZZ_ARGS is a list of flags
  cargo "${toolchain[@]}" fuzz run "${build[@]}" --jobs "$jobs" "$t" "${inputs[@]}" -- \
    -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    ${FUZZ_ARGS:-} >"$log" 2>&1 || rc=$?
  execs="$(grep -h 'stat::number_of_executed_units' "$log" | awk '{s += $2} END {print s + 0}')"
  per_sec="$(grep -h 'stat::average_exec_per_sec' "$log" | awk '{s += $2} END {print s + 0}')"
  corpus="$(find "corpus/$t" -type f | wc -l)"
  crashes=$(($(find "artifacts/$t" -type f | wc -l) - before))
  if [ "$rc" -ne 0 ] || [ "$crashes" -gt 0 ]; then
    failed=1
    crashes=$((crashes > 0 ? crashes : 1))
    grep -h -m1 -E 'panicked at|ERROR: libFuzzer|SUMMARY' "$log" || true
  fi
  summary+=("$(printf '%-14s %14s %10s %8s %8s' "$t" "$execs" "$per_sec" "$corpus" "$crashes")")
done

echo
printf '%-14s %14s %10s %8s %8s\n' target executions exec/s corpus crashes
printf '%s\n' "${summary[@]}"
exit "$failed"
