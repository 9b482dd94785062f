#!/usr/bin/env bash
# Install GuideLLM (pinned) in its own virtual environment, apart from moerun's.
# Used by benchmarks/bench_guidellm.py to compare an independent client with `moerun bench`.
#   scripts/install_guidellm.sh            -> $GUIDELLM_VENV (default ~/.cache/moerun/guidellm-venv)
set -euo pipefail
GUIDELLM_VERSION="0.8.1"
VENV="${GUIDELLM_VENV:-$HOME/.cache/moerun/guidellm-venv}"
PYTHON="${PYTHON:-python3}"
"$PYTHON" -m venv "$VENV"
"$VENV/bin/pip" install -q --upgrade pip
"$VENV/bin/pip" install -q "guidellm[recommended]==${GUIDELLM_VERSION}"
"$VENV/bin/guidellm" --version
echo "guidellm ${GUIDELLM_VERSION} installed in $VENV"
