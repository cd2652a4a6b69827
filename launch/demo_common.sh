# The start of the demo scripts, sourced with the run directory as its argument:
#   source "$(dirname "$0")/demo_common.sh" "${1:-runs/demo}"
# Strict mode, the repository root as working directory, RUNS (created), PY (the venv's python
# unless set) and quieter TensorFlow start-up.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
RUNS=$1
PY=${PY:-.venv/bin/python}
export TF_CPP_MIN_LOG_LEVEL=${TF_CPP_MIN_LOG_LEVEL:-2}
mkdir -p "$RUNS"
