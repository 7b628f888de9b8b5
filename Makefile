# The two commands of README.md: `make reproduce` and `make test`. Both set up .venv first.
PYTHON ?= python3
VENV := .venv
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: reproduce test sweep rulegraph benchmarks gpu-check

$(VENV)/.installed: requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet -r requirements.txt
	$(VENV)/bin/python -m pip install --quiet --no-deps -e .
	touch $@

reproduce: $(VENV)/.installed
	snakemake --profile workflow/profiles/local
	snakemake --report results/default/report.html

test: $(VENV)/.installed
	python -m pytest -q

# The effect map (docs/experiments.md#sweeps): every point of SWEEP as its own named run through
# PROFILE, one after another, then results/<sweep>/effect_map.png; ARGS go to Snakemake (-n: plan only).
SWEEP ?= presets/sweeps/worlds.yaml
PROFILE ?= workflow/profiles/local
ARGS ?=
sweep: $(VENV)/.installed
	python -m infoflow.report.sweep $(SWEEP) --profile $(PROFILE) $(ARGS)

# The rule graph in docs/methods.md, linked from README.md (needs graphviz's `dot`: apt-get install graphviz).
rulegraph: $(VENV)/.installed
	snakemake --rulegraph | dot -Tsvg > docs/rulegraph.svg

# Every benchmark side by side; rewrites the table in BENCHMARKS.md (reads the last run's
# results/benchmarks/ for the pipeline figures: run `make reproduce` first).
benchmarks: $(VENV)/.installed
	python benchmarks/run_all.py

# The GPU acceptance check (one CUDA GPU, a few minutes): its last line is PASS or FAIL (<reason>).
gpu-check: $(VENV)/.installed
	python -m infoflow.posttrain.gpu_check
