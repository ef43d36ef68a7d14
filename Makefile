# avi-autoscaler: `make help` lists the targets.
CARGO ?= cargo
PYTHON ?= python3
VENV := .venv

.DEFAULT_GOAL := help
.PHONY: help build test test-packaging lint fmt crd docs venv demo bench chaos image e2e-kind rbac-audit

help: ## List the targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "} {printf "  %-15s %s\n", $$1, $$2}'

build: ## Build every binary (avi-autoscaler, avi-sim, kube-standin)
	$(CARGO) build --workspace --bins --locked

test: lint build venv test-packaging ## Check formatting, run clippy -D warnings, run every test (the CRD-in-sync check included)
	$(CARGO) test --workspace --locked

test-packaging: venv ## Lint and render the Helm chart and config/, validate the manifests, check RBAC, Dockerfile and e2e script
	$(VENV)/bin/python -m pytest -q tests/python

lint: ## cargo fmt --check and cargo clippy --all-targets -D warnings
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings

fmt: ## Format the code
	$(CARGO) fmt --all

crd: ## Regenerate the CRDs in config/crd and the chart's crds/ from the Rust types
	$(CARGO) run --quiet --locked -p avi-autoscaler -- crd --out-dir config/crd
	$(CARGO) run --quiet --locked -p avi-autoscaler -- crd --out-dir config/helm/avi-autoscaler/crds
	$(PYTHON) hack/crd_reference.py

docs: ## Regenerate the field references docs/reference/*.md from the CRDs in config/crd
	$(PYTHON) hack/crd_reference.py

image: ## Build the operator image avi-autoscaler:dev (needs docker)
	docker build --target avi-autoscaler --tag avi-autoscaler:dev \
		--build-arg AVI_AUTOSCALER_GIT_SHA=$$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown) .

e2e-kind: ## End-to-end test on a kind cluster: images, helm install, avi-sim, kuard scale-up (needs docker, kind, kubectl, helm)
	hack/e2e-kind.sh

rbac-audit: venv ## Check a request log (LOG=file.jsonl, see hack/rbac_audit.py) against config/default's RBAC
	@test -n "$(LOG)" || { echo "usage: make rbac-audit LOG=requests.jsonl [ARGS='--allow-unused ...']" >&2; exit 2; }
	@mkdir -p out
	kubectl kustomize config/default > out/rbac-audit-manifests.yaml
	$(VENV)/bin/python hack/rbac_audit.py --log $(LOG) --manifests out/rbac-audit-manifests.yaml \
		--service-account avi-autoscaler/avi-autoscaler $(ARGS)

demo: ## The seed experiment end to end with the real binaries (1 → 5 → 1 in ~3 min); writes out/demo/
	$(CARGO) build --workspace --bins --locked
	$(CARGO) run --quiet --locked -p e2e --bin avi-demo -- $(DEMO_ARGS)

bench: ## Run every benchmark (release): decisions/s, parser MB/s, Avi requests per tick, testkit, the operator at 1,000 and 10,000 objects
	$(CARGO) build --release --workspace --bins --locked
	$(CARGO) bench --workspace --locked
	AVI_BENCH_OBJECTS=10000 $(CARGO) bench --locked -p e2e --bench operator_scale

SEED ?= 1
MINUTES ?= 30
chaos: ## Chaos test (release build): random faults while the load moves, invariants on every sample; SEED=1 MINUTES=30
	$(CARGO) build --release --workspace --bins --locked
	@mkdir -p out
	@echo "chaos: seed $(SEED), $(MINUTES) min; full output in out/chaos-$(SEED).log"
	@CHAOS_SEED=$(SEED) CHAOS_MINUTES=$(MINUTES) $(CARGO) test --release --locked -p e2e --test chaos \
		-- --nocapture > out/chaos-$(SEED).log 2>&1; status=$$?; \
		grep -v '^{"' out/chaos-$(SEED).log | tail -n 40; exit $$status

venv: $(VENV)/.installed ## Create .venv with the Python tools the tests call

$(VENV)/.installed: requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@
