# prober -- developer entry points. Everything runs from .venv/bin, no activation needed.
SHELL := /bin/bash
.DEFAULT_GOAL := test

PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
RUFF := $(VENV)/bin/ruff
INSTALL_STAMP := $(VENV)/.install-stamp

AZURITE_VERSION := 3.35.0
AZURITE_DIR := .cache/azurite
AZURITE_STAMP := $(AZURITE_DIR)/.stamp-$(AZURITE_VERSION)

LINT_PATHS := $(wildcard prober tests bench scripts)

.PHONY: install sysdeps test run bench lint clean distclean

install: $(INSTALL_STAMP) $(AZURITE_STAMP)

$(PY):
	@echo ">> creating $(VENV) with $(PYTHON)"
	$(PYTHON) -m venv $(VENV)

# re-install when the dependency list changes
$(INSTALL_STAMP): pyproject.toml | $(PY)
	@echo ">> installing prober (editable) with the test and ray extras"
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -e '.[test,ray]'
	@touch $@

# Azurite (Azure Blob emulator) from npm; without npm the Azure tests are skipped
$(AZURITE_STAMP):
	@if command -v npm >/dev/null 2>&1; then \
		echo ">> installing azurite@$(AZURITE_VERSION) into $(AZURITE_DIR)"; \
		mkdir -p $(AZURITE_DIR) && \
		npm install --prefix $(AZURITE_DIR) azurite@$(AZURITE_VERSION) --no-audit --no-fund --loglevel=error && \
		touch $@; \
	else \
		echo ">> npm not found: skipping Azurite (Azure tests will be skipped)"; \
	fi

# ffprobe is the tests' and the benchmark's oracle: install Debian's ffmpeg when missing
sysdeps:
	@if ! command -v ffprobe >/dev/null 2>&1; then \
		SUDO=""; [ "$$(id -u)" = 0 ] || SUDO="$$(command -v sudo)"; \
		if command -v apt-get >/dev/null 2>&1 && { [ "$$(id -u)" = 0 ] || [ -n "$$SUDO" ]; }; then \
			echo ">> installing ffmpeg (ffprobe) with apt-get"; \
			$$SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
			$$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends ffmpeg; \
		else \
			echo ">> ffprobe not found: install ffmpeg (apt-get install ffmpeg, brew install ffmpeg)"; exit 1; \
		fi; \
	fi

test: install sysdeps
	$(RUFF) check $(LINT_PATHS)
	$(PY) -m pytest -q

run: install
	$(PY) scripts/demo.py

# byte-compiled as pip compiles an installed package: an editable checkout run with
# PYTHONDONTWRITEBYTECODE would compile every prober module again in every run it times
bench: install sysdeps
	$(PY) -m compileall -q prober
	$(PY) bench/run.py

lint: $(INSTALL_STAMP)
	$(RUFF) check $(LINT_PATHS)

clean:
	rm -rf .pytest_cache .ruff_cache build dist *.egg-info .cache/media .cache/media.manifest.json demo-out
	find . -path ./$(VENV) -prune -o -path ./.cache -prune -o -name __pycache__ -type d -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV) .cache
