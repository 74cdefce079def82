# ragops: stable entry points. `make test` is what CI runs; `make demo` is the main job.
SHELL := /bin/bash
.DEFAULT_GOAL := help

export UV_CACHE_DIR ?= $(HOME)/.cache/uv
export RAGOPS_CACHE ?= $(HOME)/.cache/ragops
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
VENV := .venv
PY := $(VENV)/bin/python
ARGS ?=
PYTEST_ARGS ?=
# `make test` runs the lanes of tests/conftest.py side by side: one xdist worker each.
TEST_WORKERS ?= 3

.PHONY: help
help: ## List the targets
	@grep -hE '^[a-zA-Z_%-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-18s %s\n", $$1, $$2}'

.PHONY: setup
setup: ## Install everything the project needs (Debian packages, Python env, Neo4j jars, cluster binaries)
	@bash hack/setup.sh

.PHONY: lint
lint: setup ## ruff (lint + format check), mypy and the import-linter layer contracts
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy rag_operator rag_runtime hack benchmarks
	$(VENV)/bin/lint-imports

.PHONY: test
test: setup lint ## Set up and run lint plus every test tier (TEST_WORKERS=3 lanes side by side)
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadscope --no-loadscope-reorder $(PYTEST_ARGS)

.PHONY: test-unit test-integration test-e2e
test-unit: setup ## Unit tests only (no processes)
	$(PY) -m pytest tests/unit $(PYTEST_ARGS)
test-integration: setup ## Integration tests (real services and the local cluster)
	$(PY) -m pytest tests/integration $(PYTEST_ARGS)
test-e2e: setup ## End-to-end tests
	$(PY) -m pytest tests/e2e $(PYTEST_ARGS)

.PHONY: serve
serve: setup ## Run the RAG runtime alone (embedded Postgres, no Redis/Neo4j) on 127.0.0.1:8000 (anonymous unless RAG_API_KEYS is set)
	$(if $(RAG_API_KEYS),,RAG_ALLOW_ANONYMOUS=true) $(VENV)/bin/rag-runtime serve $(ARGS)

.PHONY: services-up
services-up: setup ## Start Postgres, Redis, Neo4j and Prometheus in the foreground until Ctrl-C
	$(PY) -m hack.services up $(ARGS)

.PHONY: cluster-up cluster-down cluster-env cluster-logs
cluster-up: setup ## Start the local cluster (control plane, kwok and real-pod nodes)
	$(PY) -m hack.cluster up $(ARGS)
cluster-down: ## Stop the local cluster: every process, namespace, address and mount
	@$(PY) -m hack.cluster down
cluster-env: ## Print the KUBECONFIG export line of the running local cluster
	@$(PY) -m hack.cluster env
cluster-logs: ## Print a real pod's output: make cluster-logs POD=name [NS=ns] [C=container] [PREVIOUS=1]
	@$(PY) -m hack.cluster logs $(POD) $(if $(NS),-n $(NS)) $(if $(C),-c $(C)) $(if $(PREVIOUS),--previous)

.PHONY: crds
crds: setup ## Regenerate crds/, the chart's CRD (models) and the chart's RBAC rules (children table)
	$(PY) -m rag_operator.crd --write crds/

.PHONY: examples
examples: setup ## Regenerate generated files: argocd-cm.yaml, the Grafana dashboard, the chart's values table
	$(PY) -m hack.argocd_cm --write
	$(PY) -m hack.dashboards --write
	$(PY) -m hack.chart_docs --write

.PHONY: demo
demo: setup ## Bring up the local system and show it working
	PYTHONPATH=$(CURDIR) $(PY) -m hack.demo $(ARGS)

bench-%: setup ## Run benchmarks/NAME.py (ARGS=--quick for a short run)
	PYTHONPATH=$(CURDIR) $(PY) benchmarks/$*.py $(ARGS)

.PHONY: clean
clean: ## Remove the local environment and state (caches under ~/.cache stay)
	rm -rf $(VENV) .state .mypy_cache .ruff_cache .pytest_cache
