# Every target bootstraps its own tools: a fresh machine needs only python3.
PYTHON ?= python3
TOOLS := .tools
UV := $(TOOLS)/bin/uv
VENV := .venv
BIN := $(VENV)/bin
export UV_PYTHON_DOWNLOADS := never
export UV_PYTHON := $(PYTHON)

.PHONY: help install system-deps test test-only test-on test-litestar soak lint typecheck docs demo bench bench-quick clean

help:
	@echo "make test         install everything (as root, the system packages the tests use: .ci/system-deps), run lint (ruff, import layers), mypy, docs build and the test suite"
	@echo "make test-on ON=/path/to/python3.10   the test suite on another interpreter, in .venv-3.10"
	@echo "make test-litestar LITESTAR=litestar==2.12.1   the test suite on another Litestar (pip requirement or wheel path)"
	@echo "make soak         long load, churn, fault and fuzzing runs (SOAK_SCALE=0.1 FUZZ_EXAMPLES=1000 for a short one)"
	@echo "make demo         the demo on http://127.0.0.1:8000 (broadcast, resume, live figures)"
	@echo "make bench        full benchmark run (peers side by side), writes benchmarks/results/"
	@echo "make bench-quick  a short benchmark run for day-to-day work"
	@echo "make docs         build the Sphinx docs (warnings are errors)"

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --disable-pip-version-check "uv==0.13.8"

$(VENV)/.synced: $(UV) pyproject.toml uv.lock
	$(UV) sync --frozen --all-extras
	touch $@

install: $(VENV)/.synced

lint: install
	$(BIN)/ruff check litestar_sse tests examples benchmarks docs
	$(BIN)/ruff format --check litestar_sse tests examples benchmarks docs
	$(BIN)/lint-imports --no-cache

typecheck: install
	$(BIN)/mypy

docs: install
	$(BIN)/sphinx-build -W --keep-going -q -b html docs docs/_build/html

test-only: install
	$(BIN)/pytest

# The system packages the tests use (redis-server, chromium, Node.js...): installed when root,
# else one line naming what is missing and the command that installs it.
system-deps:
	@PYTHON=$(PYTHON) .ci/system-deps

# The system packages first, before any venv is built (Debian's python3 needs python3-venv).
test: system-deps
	$(MAKE) lint typecheck docs test-only

# The test suite on another interpreter (installed already: no download), in a venv of its own.
ON_VERSION = $(shell $(ON) -c 'import sys; print("%d.%d" % sys.version_info[:2])')
test-on: system-deps $(UV)
	@test -n "$(ON)" || { echo "usage: make test-on ON=/path/to/python3.X"; exit 2; }
	UV_PROJECT_ENVIRONMENT=.venv-$(ON_VERSION) $(UV) sync --frozen --all-extras --python $(ON)
	.venv-$(ON_VERSION)/bin/pytest

# The test suite against another Litestar: a pip requirement ("litestar==2.12.1") or a wheel
# path, in a venv of its own named after it. Everything else comes from the lock.
LITESTAR_VENV = .venv-litestar-$(shell printf '%s' '$(notdir $(LITESTAR))' | sed 's/[^A-Za-z0-9.]/-/g')
test-litestar: system-deps $(UV)
	@test -n "$(LITESTAR)" || { echo "usage: make test-litestar LITESTAR=<pip requirement or wheel path>"; exit 2; }
	UV_PROJECT_ENVIRONMENT=$(LITESTAR_VENV) $(UV) sync --frozen --all-extras --no-install-package litestar
	$(UV) pip install --quiet --python $(LITESTAR_VENV)/bin/python "$(LITESTAR)"
	$(LITESTAR_VENV)/bin/python -c 'import litestar; print("Litestar", litestar.__version__)'
	$(LITESTAR_VENV)/bin/pytest

# The long runs: the fuzzers with many more examples, then tests/soak (real servers, real Redis).
SOAK_SCALE ?= 1
FUZZ_EXAMPLES ?= 20000
soak: system-deps install
	SSE_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(BIN)/pytest -q tests/codec/test_fuzz.py
	SOAK_SCALE=$(SOAK_SCALE) $(BIN)/pytest -m soak tests/soak -v --durations=0

# The demo needs this package and a server only: a venv of its own, not the dev toolchain.
DEMO_VENV := .venv-demo
$(DEMO_VENV)/.synced: $(UV) pyproject.toml uv.lock
	UV_PROJECT_ENVIRONMENT=$(DEMO_VENV) $(UV) sync --frozen --no-default-groups --group demo
	touch $@

demo: $(DEMO_VENV)/.synced
	$(DEMO_VENV)/bin/python -m examples.demo

bench: install
	$(BIN)/python -m benchmarks.run

bench-quick: install
	$(BIN)/python -m benchmarks.run --quick

clean:
	rm -rf $(VENV) $(DEMO_VENV) .venv-3.* .venv-litestar-* $(TOOLS) benchmarks/.venv-peers benchmarks/.venv-peers-litestar3 docs/_build .mypy_cache .ruff_cache .pytest_cache
