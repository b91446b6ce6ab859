#!/usr/bin/env bash
# Benchmark of the deployable package (issue #8), run by hand: `benches/package.sh`.
# Builds the release package (cargo xtask package), checks it as the host will use it, and
# reports the binary's size and the time from process start to the first answer on GET / (the
# host's readiness probe; every cold start of a Flex instance pays it), over 50 starts.
# Targets: under 25 MiB, under 20 ms.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.tools/bin:$PWD/.venv/bin:$PATH"   # cargo-zigbuild and zig, as scripts/test installs them
cargo xtask package
cargo xtask check-package --zip target/package/mfa-recovery.zip --measure "${RUNS:-50}"
