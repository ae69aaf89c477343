# Self-documenting: `make help` lists the targets. Every target bootstraps what it needs.
SHELL := /bin/bash
.DEFAULT_GOAL := help

# Python 3.13 (the Lambda runtime we target) through pyenv: .python-version selects it here.
PYTHON ?= $(shell command -v python3.13 2>/dev/null || echo $(HOME)/.pyenv/versions/3.13.0/bin/python3.13)
VENV := .venv
TOX := $(VENV)/bin/tox

.PHONY: help bootstrap test unit lint lock clean

help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

bootstrap: $(TOX) ## install the pinned tox into .venv

$(TOX): requirements/tox.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet -r requirements/tox.txt
	touch $@

test: bootstrap ## run every test environment (lint, unit)
	$(TOX) run -e lint,unit

unit: bootstrap ## unit tests only (no network, moto's S3)
	$(TOX) run -e unit

lint: bootstrap ## ruff lint and format check
	$(TOX) run -e lint

lock: bootstrap ## re-resolve the pinned requirements/*.txt from requirements/*.in
	$(VENV)/bin/pip install --quiet uv
	for name in dev tox; do \
	  $(VENV)/bin/uv pip compile --quiet --python-version 3.13 requirements/$$name.in -o requirements/$$name.txt; \
	done

clean: ## remove generated files (venvs, build outputs)
	rm -rf $(VENV) .tox build .serverless .pytest_cache .ruff_cache
