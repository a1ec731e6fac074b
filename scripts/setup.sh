#!/usr/bin/env bash
# One-step set-up: a virtual environment in .venv with the install-tested dependency set.
# Why two steps: safety-gymnasium 0.4.0 (which dsrl 0.1.0 pins) declares mujoco==2.3.0 and
# pygame==2.1.0, which have no Python 3.11 wheels and are not needed to run; so those two packages
# go in with --no-deps after everything else (docs/installation.md).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3.11}"
command -v "$PYTHON" >/dev/null 2>&1 || PYTHON=python3
if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
PIP=(.venv/bin/python -m pip install --quiet --disable-pip-version-check)
# The CPU wheel first, so nothing below can pull a multi-GB CUDA build of torch.
"${PIP[@]}" "torch==2.13.0"
"${PIP[@]}" -r requirements/base.txt
# Optional Weights & Biases logger (--log wandb); installed here so its offline test runs.
"${PIP[@]}" -r requirements/wandb.txt
"${PIP[@]}" --no-deps -r requirements/no-deps.txt
"${PIP[@]}" --no-deps --no-build-isolation -e .
echo "retrofit set-up done: $(.venv/bin/python -c 'import retrofit; print(retrofit.__version__)')"
