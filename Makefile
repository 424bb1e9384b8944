# Plan Guard - every target is a thin wrapper over `uv run ...`.
# Bootstraps its own pinned uv into .tools/ (with pip, no downloaded installer) and points uv and
# `sam build` at a Python 3.12 (pyenv's, when pyenv is present). Nothing is downloaded but packages.

SHELL := /bin/bash
.DEFAULT_GOAL := help

UV_VERSION := 0.13.9
SAM_VERSION := 1.170.0
TOOLS := .tools
UV := $(TOOLS)/bin/uv
BOOT_PYTHON := $(shell command -v python3 || command -v python)

# pyenv machines: a python3.12 shim that resolves (and keeps the default version's shims working).
ifneq ($(shell command -v pyenv 2>/dev/null),)
PYENV_312 := $(shell pyenv versions --bare 2>/dev/null | grep -E '^3\.12\.[0-9]+$$' | tail -1)
PYENV_DEFAULT := $(shell PYENV_VERSION= pyenv version-name 2>/dev/null | cut -d: -f1)
ifneq ($(PYENV_312),)
export PYENV_VERSION ?= $(PYENV_312):$(PYENV_DEFAULT)
endif
endif
export UV_PYTHON ?= >=3.12
export UV_PYTHON_DOWNLOADS := never
export UV_PROJECT_ENVIRONMENT := .venv
export SAM_CLI_TELEMETRY := 0
RUN := $(UV) run --frozen
SAM := $(UV) tool run --from aws-sam-cli==$(SAM_VERSION) sam

FN ?= AccountsFunction
EVENT ?= events/accounts_list.json

.PHONY: help bootstrap sync dev test unit integration node-test lint format build deploy publish bench invoke token plan reconcile release-hold webhook report-usage openapi fuzz screenshots clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

$(UV):
	@echo "Bootstrapping uv $(UV_VERSION) into $(TOOLS)/ ..."
	@$(BOOT_PYTHON) -m venv $(TOOLS)
	@$(TOOLS)/bin/python -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

bootstrap: $(UV)

.venv/.synced: $(UV) pyproject.toml uv.lock
	@$(UV) sync --frozen --quiet
	@touch $@

sync: .venv/.synced  ## install the Python environment

kinde/node_modules/.package-lock.json: kinde/package-lock.json
	@cd kinde && npm ci --no-audit --no-fund --loglevel=error

# axe-core for the dashboard's browser tests: its own package.json, never in kinde/ (pushed to Kinde as is)
tests/browser/node_modules/.package-lock.json: tests/browser/package-lock.json
	@cd tests/browser && npm ci --no-audit --no-fund --loglevel=error

# Kinde's own webhook decoder (@kinde/webhooks) for the parity test of ours: its own package.json too
tests/node/node_modules/.package-lock.json: tests/node/package-lock.json
	@cd tests/node && npm ci --no-audit --no-fund --loglevel=error

dev: sync  ## run the whole system locally on PORT (default 3000)
	@$(RUN) python -m local.cli dev

test: sync kinde/node_modules/.package-lock.json tests/browser/node_modules/.package-lock.json tests/node/node_modules/.package-lock.json  ## run all tests: Python (unit + integration + the dashboard in headless Chromium, when installed) and the Kinde workflow
	@$(RUN) pytest -q
	@cd kinde && npm test --silent

unit: sync  ## Python unit tests only
	@$(RUN) pytest -q tests/unit

integration: sync kinde/node_modules/.package-lock.json tests/node/node_modules/.package-lock.json  ## Python integration tests only (local servers on 127.0.0.1)
	@$(RUN) pytest -q tests/integration

node-test: kinde/node_modules/.package-lock.json  ## the Kinde workflow's own tests (node)
	@cd kinde && npm test --silent

# Where the functions' and the layer's packages are found: pytest's pythonpath in pyproject.toml.
PACKAGE_PATHS = $$($(RUN) python -c 'import tomllib; print(":".join(tomllib.load(open("pyproject.toml", "rb"))["tool"]["pytest"]["ini_options"]["pythonpath"]))')

lint: sync kinde/node_modules/.package-lock.json  ## ruff (lint + format check), mypy, import-linter (no import cycles), tsc
	@$(RUN) ruff check .
	@$(RUN) ruff format --check .
	@$(RUN) mypy .
	@PYTHONPATH="$(PACKAGE_PATHS)" $(RUN) lint-imports --no-cache --no-logo
	@cd kinde && npm run --silent typecheck

openapi: sync  ## write docs/openapi.json from the code (offline; the functions never import it)
	@$(RUN) python -m tools.openapi

fuzz: sync  ## longer fuzzing: the API over HTTP (API_FUZZ_EXAMPLES=300), then Kinde/DynamoDB faults and concurrency (FUZZ_EXAMPLES=2000)
	@FUZZ_EXAMPLES=$(or $(API_FUZZ_EXAMPLES),300) FUZZ_SEED=random $(RUN) pytest -q tests/fuzz/api
	@FUZZ_EXAMPLES=$(or $(FUZZ_EXAMPLES),2000) $(RUN) pytest -q -s -m fuzz --ignore=tests/fuzz/api --timeout 3600

format: sync  ## apply ruff fixes and formatting
	@$(RUN) ruff check --fix .
	@$(RUN) ruff format .

build: $(UV)  ## sam validate --lint and sam build (no Docker, no AWS account)
	@$(SAM) validate --lint
	@$(SAM) build

deploy: build sync  ## sam deploy --guided, then make publish (needs AWS credentials, as publish does)
	@$(SAM) deploy --guided
	@$(MAKE) --no-print-directory publish

publish: sync  ## the dashboard to a deployed stack (frontend/, its config.js, a CloudFront invalidation): make publish [STACK=…] [REGION=…] [CLIENT_ID=…]
	@$(RUN) python -m tools.publish_dashboard $(if $(STACK),--stack $(STACK)) $(if $(REGION),--region $(REGION)) $(if $(CLIENT_ID),--client-id $(CLIENT_ID))

bench: sync  ## benchmarks that print ratios (cold-start imports, hot paths)
	@$(RUN) python -m tests.bench

invoke: sync  ## run one function with one event: make invoke FN=AccountsFunction EVENT=events/x.json
	@$(RUN) python -m local.cli invoke $(if $(filter command line,$(origin FN)),$(FN)) $(EVENT) $(if $(filter command line,$(origin USER)),--user $(USER))

token: sync  ## print a dev token (and set the plan): make token USER=kp_alice PLAN=pro [ORG=org_acme [PERMISSIONS=write:tracked_accounts]]
	@$(RUN) python -m local.cli token $(if $(filter command line,$(origin USER)),--user $(USER)) $(if $(PLAN),--plan $(PLAN)) $(if $(ORG),--org $(ORG)) $(if $(filter command line,$(origin PERMISSIONS)),--permissions "$(PERMISSIONS)")

plan: sync  ## ask for a plan change as Kinde would: make plan USER=kp_alice|ORG=org_acme PLAN=free [APPLY_AFTER=30 | FAILS=1]
	@$(RUN) python -m local.cli plan $(if $(filter command line,$(origin USER)),--user $(USER)) $(if $(ORG),--org $(ORG)) --plan $(or $(PLAN),$(error give PLAN=<plan code>)) $(if $(APPLY_AFTER),--apply-after $(APPLY_AFTER)) $(if $(FAILS),--fails)

reconcile: sync  ## recount a user's (or ORG=…'s) accounts, repair the counter: make reconcile USER=kp_alice|ORG=org_acme [TABLE=deployed]
	@$(RUN) python -m local.cli reconcile $(if $(filter command line,$(origin USER)),--user $(USER)) $(if $(ORG),--org $(ORG)) $(if $(TABLE),--table $(TABLE))

release-hold: sync  ## end one user's (or ORG=…'s) downgrade hold (support): make release-hold USER=kp_alice|ORG=org_acme [TABLE=deployed]
	@$(RUN) python -m local.cli release-hold $(if $(filter command line,$(origin USER)),--user $(USER)) $(if $(ORG),--org $(ORG)) $(if $(TABLE),--table $(TABLE))

report-usage: sync  ## send every customer's current count to Kinde billing again (paged, paced), as the daily schedule does
	@$(RUN) python -m local.cli report-usage

webhook: sync  ## send a signed Kinde webhook to the local API: make webhook TYPE=user.deleted USER=kp_alice | TYPE=organization.deleted ORG=org_acme [AGE=seconds, negative: future]
	@$(RUN) python -m local.cli webhook $(if $(TYPE),--type $(TYPE)) $(if $(filter command line,$(origin USER)),--user $(USER)) $(if $(ORG),--org $(ORG)) $(if $(AGE),--age=$(AGE))

screenshots: sync tests/browser/node_modules/.package-lock.json  ## the dashboard's screenshots in docs/screenshots/ (headless Chromium, a fresh make dev) [SET=users|organizations]
	@PYTHONPATH=layers/common $(RUN) python -m tests.browser.screenshots $(SET)

clean:
	rm -rf .aws-sam .pytest_cache .mypy_cache .ruff_cache
