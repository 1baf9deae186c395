#!/usr/bin/env bash
# The one-command device check (docs/benchmarks.md, "GPU check"):
#   scripts/gpu_check.sh OUT_DIR                 # on the first GPU, full sizes (at most ~5 minutes)
#   scripts/gpu_check.sh OUT_DIR --device cpu    # the same logic at reduced sizes
# Writes OUT_DIR/gpu_check.json and OUT_DIR/gpu_check.md; exits 1 naming each mismatch.
set -euo pipefail
cd "$(dirname "$0")/.."
exec "${PYTHON:-python}" -m dfdnet.cli.gpu_check "$@"
