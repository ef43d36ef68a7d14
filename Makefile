# avi-autoscaler: `make help` lists the targets.
CARGO ?= cargo
CRD_FILE := config/crd/aviautoscalers.autoscaling.avi.dev.yaml
PYTHON ?= python3
VENV := .venv

.DEFAULT_GOAL := help
.PHONY: help build test lint fmt crd venv bench

help: ## List the targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "} {printf "  %-12s %s\n", $$1, $$2}'

build: ## Build every binary (avi-autoscaler, avi-sim, kube-standin)
	$(CARGO) build --workspace --bins --locked

test: lint build venv ## Check formatting, run clippy -D warnings, run every test (the CRD-in-sync check included)
	$(CARGO) test --workspace --locked

lint: ## cargo fmt --check and cargo clippy --all-targets -D warnings
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings

fmt: ## Format the code
	$(CARGO) fmt --all

bench: ## Run the benchmarks (release build); speed goals live here, not in tests
	$(CARGO) bench --workspace --locked --benches

crd: ## Regenerate the CRD in config/crd from the Rust types
	$(CARGO) run --quiet --locked -p avi-autoscaler -- crd > $(CRD_FILE)

venv: $(VENV)/.installed ## Create .venv with the Python tools the tests call

$(VENV)/.installed: requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@
