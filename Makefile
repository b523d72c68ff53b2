# llmpack: `make demo` runs the operator on a local control plane; `make test` runs every check.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
TESTBIN := $(CURDIR)/.testbin
export PATH := $(TESTBIN):$(PATH)

.PHONY: help venv lint typecheck unit test testbin browser-tools screenshots cluster-up cluster-down demo crd golden \
	bench clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-13s %s\n", $$1, $$2}'

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

venv: $(VENV)/.installed ## create .venv with llmpack and its dev tools

lint: venv ## ruff
	$(BIN)/ruff check src tests bench llmpack_dev

typecheck: venv ## mypy, strict on src/ and llmpack_dev/
	$(BIN)/mypy src llmpack_dev

testbin: ## build the test control plane (etcd, kube-*, kubectl, kwok, helm), egctl and prometheus into .testbin/
	testcluster/build.sh $(TESTBIN)

# pytest exits 5 when it collected nothing: that is a failure here, never a pass.
define run_pytest
	$(BIN)/pytest $(1); rc=$$?; if [ $$rc -eq 5 ]; then echo "pytest collected no tests" >&2; exit 1; fi; exit $$rc
endef

unit: venv ## unit tests only (no cluster)
	@$(call run_pytest,tests/unit)

browser-tools: ## Debian's chromium (apt-get, when missing) and axe-core (npm ci) for the browser tests
	tests/browser/install-tools.sh

test: lint typecheck testbin browser-tools ## everything: lint, types, unit, cluster and browser tests
	@$(call run_pytest,tests)

screenshots: venv testbin browser-tools ## retake docs/images/key-manager/*.png from the browser tests
	UPDATE_SCREENSHOTS=1 $(BIN)/pytest -q -p no:randomly tests/browser

cluster-up: venv testbin ## start the local control plane; kubeconfig in .testcluster/kubeconfig
	$(BIN)/python -m llmpack_dev.cluster up --state .testcluster --bin $(TESTBIN)

cluster-down: venv ## stop the local control plane and remove its state
	$(BIN)/python -m llmpack_dev.cluster down --state .testcluster

demo: venv testbin ## control plane, CRD, operator, examples reaching Ready; qwen-int4 really downloaded from a local Hub
	$(BIN)/python -m llmpack_dev.demo --state .testcluster --bin $(TESTBIN) $(DEMO_ARGS)

crd: venv ## regenerate the checked-in CRD and the chart's admission policies from the API models and rules
	$(BIN)/llmpack crd > charts/llmpack/crds/llmmodels.llm.nebari.dev.yaml
	$(BIN)/llmpack crd --kind passthroughmodel > charts/llmpack/crds/passthroughmodels.llm.nebari.dev.yaml
	$(BIN)/python -c 'import sys; from llmpack.admission.policies import chart_template as t; sys.stdout.write(t())' \
		> charts/llmpack/templates/admission-policies.yaml

golden: venv ## regenerate the golden render files after an intended change
	UPDATE_GOLDEN=1 $(BIN)/pytest -q tests/unit/test_examples.py

bench: venv testbin ## run the benchmarks and print their figures
	$(BIN)/python bench/operator_scale.py

clean: ## remove the venv, built binaries and cluster state
	-$(BIN)/python -m llmpack_dev.cluster down --state .testcluster 2>/dev/null
	rm -rf $(VENV) $(TESTBIN) .testcluster .mypy_cache .pytest_cache .ruff_cache tests/browser/node_modules
