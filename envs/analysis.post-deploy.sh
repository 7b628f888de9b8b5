#!/usr/bin/env bash
# Snakemake runs this once inside the new environment, from the workflow's directory:
# conda jobs do not see PYTHONPATH, so the package must be installed into the environment.
set -euo pipefail
python -m pip install --no-deps -e .
