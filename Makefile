# The two commands a newcomer needs (README "Quick start"):
#   make run   install what is missing, initialise the embedded default, run the main job
#   make test  install what is missing, then lint, type-check and run the whole test suite
# Both are idempotent. Debian packages are installed with apt-get (as root, or through sudo).

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DEB_PACKAGES := softhsm2 opensc openssl postgresql libengine-pkcs11-openssl golang-cfssl curl stunnel4 chromium fonts-ipafont-gothic

.PHONY: run test deps system-deps venv check clean lock

run: deps
	$(BIN)/koshin init
	$(BIN)/koshin sample
	$(BIN)/koshin demo
	$(BIN)/koshin whatif miyazaki --run 50 --html whatif-report.html --plots whatif-plots
	$(BIN)/koshin incident select sample-roca --roca
	$(BIN)/koshin serve

test: deps check
	$(BIN)/pytest

check: deps
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

deps: system-deps venv

system-deps:
	@missing=""; \
	for pkg in $(DEB_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$pkg 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$pkg"; \
	done; \
	$(PYTHON) -c 'import venv, ensurepip' 2>/dev/null || missing="$$missing python3-venv"; \
	if [ -n "$$missing" ]; then \
	  sudo=""; [ "$$(id -u)" -eq 0 ] || sudo=sudo; \
	  echo "installing Debian packages:$$missing"; \
	  $$sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq $$missing; \
	fi

venv: $(VENV)/.installed

# Every dependency, dev tools included, comes pinned with its hashes from requirements.lock (pip-compile
# --generate-hashes; `make lock` regenerates it after a change to pyproject.toml); koshin itself goes on top
# without resolving anything again.
$(VENV)/.installed: pyproject.toml requirements.lock
	$(PYTHON) -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11) and "koshin needs Python 3.11")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --require-hashes --no-deps -r requirements.lock
	$(BIN)/python -m pip install -q --no-deps --no-build-isolation -e .
	touch $@

lock: venv
	$(BIN)/pip-compile -q --generate-hashes --extra dev --strip-extras --allow-unsafe --no-emit-index-url \
	  --no-emit-find-links --output-file requirements.lock pyproject.toml

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache *.egg-info
