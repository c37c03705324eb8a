# One Makefile for gemini-slo. Every target installs what it needs into .venv first,
# so that on a fresh clone `make demo` and `make test` work on their own.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PACKAGES := contract instrumentation emulator agent alerts dashboards lab cli
# Playwright (a dev dependency) drives Debian's chromium; it must never fetch a browser.
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD := 1

.PHONY: test lint demo generate bench tools clean

# setup.py compiles agent/proto/ at install time: a change there reinstalls too.
$(STAMP): pyproject.toml setup.py agent/proto/prometheus_metrics.proto
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# Debian's prometheus (with promtool) and prometheus-alertmanager (with amtool), for the
# rule tests, the full-stack test and the demo. Installed only when missing, only as root.
# Also Debian trixie's victoria-metrics (vmalert, vmagent) and prometheus 2.53, unpacked
# into tools/ (git-ignored) for the scale-out tests: see lab/tools.py.
tools:
	@bash .ci/install-tools

test: $(STAMP) tools
	$(BIN)/pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	@# mypy cannot see through setuptools' editable finder: give it a gemini_slo/ of symlinks.
	mkdir -p build/typecheck/gemini_slo
	for p in $(PACKAGES); do ln -sfn ../../../$$p build/typecheck/gemini_slo/$$p; done
	MYPYPATH=build/typecheck $(BIN)/mypy $(foreach p,$(PACKAGES),-p gemini_slo.$(p))

demo: $(STAMP) tools
	$(BIN)/gemini-slo demo --workdir demo-data

generate: $(STAMP)
	$(BIN)/gemini-slo generate --spec contract/slo.yaml --out .

bench: $(STAMP)
	@for b in bench/*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
