# The two commands README.md promises: `make run` and `make test`.
# Only Python 3.11+ and make are assumed; everything else goes into .venv.

PYTHON ?= $(shell for p in python3.13 python3.12 python3.11 python3; do \
	command -v $$p >/dev/null 2>&1 && $$p -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
	&& { echo $$p; break; }; done)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint bench clean update

# The versions CI ran, from the lock (`make update` refreshes it from pyproject.toml's ranges);
# then the project itself, with nothing more resolved.
LOCK := requirements.lock

$(STAMP): pyproject.toml $(LOCK)
	@test -n "$(PYTHON)" || { echo "make: Python 3.11 or newer is needed (python3.11 or python3 on PATH)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -r $(LOCK)
	$(BIN)/python -m pip install --quiet --no-deps -e .
	@touch $@

update: $(STAMP)
	$(BIN)/python -m pip install --quiet pip-tools
	$(BIN)/pip-compile --quiet --upgrade --extra test --strip-extras --no-emit-index-url \
		--no-emit-find-links -o $(LOCK) pyproject.toml
	$(BIN)/python -m pip install --quiet -r $(LOCK)

run: $(STAMP)
	$(BIN)/smp console --sim

# Two workers: the suite waits on simulated machines and terminals as much as it computes,
# and more workers than cores starve the simulators' real-time threads. Work stealing keeps
# the long end-to-end tests from leaving one worker idle at the end.
test: lint
	$(BIN)/python -m pytest -n 2 --dist worksteal

# Style, the layering (pyproject.toml's import-linter contracts, docs/architecture.md), then
# strict types on every package; cheapest first.
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/lint-imports --no-cache
	$(BIN)/mypy protocols firmware_bridge sim sessions console

bench: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[bench]'
	@# Every benchmark runs; the ones that missed a target (or failed) are named at the end.
	@failed=""; for b in bench/bench_*.py; do echo "== $$b"; \
		$(BIN)/python $$b || failed="$$failed $$b"; done; \
	test -z "$$failed" || { echo "make bench: missed a target or failed:$$failed"; exit 1; }

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis
