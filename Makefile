# Self-documenting: `make help` lists the targets. Every target bootstraps what it needs.
SHELL := /bin/bash
.DEFAULT_GOAL := help

# Python 3.13 (the Lambda runtime we target) through pyenv: .python-version selects it here.
PYTHON ?= $(shell command -v python3.13 2>/dev/null || echo $(HOME)/.pyenv/versions/$(shell cat .python-version)/bin/python3.13)
VENV := .venv
TOX := $(VENV)/bin/tox

.PHONY: help bootstrap browser demo stop localstack test unit corpus lint integration package layer fuzz bench memory gif-palettes golden golden-report golden-accept fixtures lock clean

help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

bootstrap: $(TOX) ## install the pinned tox into .venv

$(TOX): requirements/tox.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet -r requirements/tox.txt
	touch $@

browser: ## install Debian's chromium (headless) for the golden-report check, if missing
	@command -v chromium >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

demo: bootstrap ## run it locally: LocalStack, deploy, upload fixtures/images (ARGS="DIR --keep"), contact sheet
	$(TOX) run -e demo -- $(ARGS)

stop: ## stop the LocalStack that `make demo ARGS=--keep` or `make localstack` left running
	$(PYTHON) localstack/server.py stop

localstack: ## start host-mode LocalStack on 127.0.0.1:4566 and leave it running
	$(PYTHON) localstack/server.py start

# In parallel, three at a time: integration mostly waits on LocalStack while unit and corpus compute;
# package waits for integration (tox.ini: both rewrite .serverless/). A failing environment's
# output is printed in full; the golden review report is shared by the run (GOLDEN_REVIEW_RUN).
test: bootstrap browser ## run every test environment (lint, unit, corpus, golden-report, package, integration)
	GOLDEN_REVIEW_RUN=make-test-$$(date +%s%N) $(TOX) run-parallel -p 3 --parallel-no-spinner \
		-e lint,unit,corpus,golden-report,package,integration

unit: bootstrap ## unit tests only (no network, moto's S3)
	$(TOX) run -e unit

corpus: bootstrap ## fetch the third-party image corpus (cached) and run the differential test (tox -e corpus)
	$(TOX) run -e corpus

lint: bootstrap ## ruff lint and format check
	$(TOX) run -e lint

integration: bootstrap ## end to end on host-mode LocalStack (tox -e integration)
	$(TOX) run -e integration

package: bootstrap ## offline `sls package --stage prod` and checks on its artifacts (tox -e package)
	$(TOX) run -e package

layer: ## build and check the Pillow layer (ARCH=x86_64 or arm64) into build/layer/
	$(PYTHON) layer/build.py --runtime python3.13 --arch $(or $(ARCH),x86_64)

fuzz: bootstrap ## long fuzz run of the core (EXAMPLES per file and mutation, default 500)
	THUMBNAILER_FUZZ_EXAMPLES=$(or $(EXAMPLES),500) $(TOX) run -e unit -- tests/unit/test_fuzz.py

bench: bootstrap ## benchmark vs the guide and libvips -> build/bench/results.md (QUICK=1: under 3 min)
	$(TOX) run -e bench -- $(if $(QUICK),--quick) $(BENCH_ARGS)

memory: bootstrap ## worst-case memory at the limits, memorySize -> build/memory-search/results.md (QUICK=1, REV=HEAD)
	$(TOX) run -e memory -- $(if $(QUICK),--quick) $(if $(REV),--revision $(REV)) $(MEMORY_ARGS)

golden: bootstrap ## compare thumbnails with the goldens (review: build/golden-review/index.html)
	$(TOX) run -e unit -- -m golden

golden-report: bootstrap ## review report of the current core vs the goldens, without pytest
	$(TOX) exec -e unit -- python -m harness.golden report

golden-accept: bootstrap ## accept the core's thumbnails as goldens (NAMES="a.jpg b.png", none = all; FROM_REVIEW=1)
	$(TOX) exec -e unit -- python -m harness.golden accept $(if $(FROM_REVIEW),--from-review) $(NAMES)

gif-palettes: bootstrap ## luma SSIM of GIF palette methods (octree, median cut, the guide's) on 14 GIFs
	$(TOX) exec -e unit -- python bench/gif_palettes.py

fixtures: bootstrap ## regenerate fixtures/images from fixtures/make_fixtures.py
	$(TOX) exec -e unit -- python fixtures/make_fixtures.py

lock: bootstrap ## re-resolve the pinned requirements/*.txt from requirements/*.in
	$(VENV)/bin/pip install --quiet uv
	for name in dev tox package bench; do \
	  $(VENV)/bin/uv pip compile --quiet --python-version 3.13 requirements/$$name.in -o requirements/$$name.txt; \
	done

clean: ## remove generated files (venvs, build outputs)
	rm -rf $(VENV) .tox build .serverless .pytest_cache .ruff_cache

.PHONY: docker
docker: bootstrap ## Docker mode, needs an engine, not part of `make test`: LocalStack in a container on :4599 (tox -e docker)
	$(TOX) run -e docker
