# Two commands matter: `make demo` and `make test`. Both create or reuse .venv and install
# everything pinned by constraints.txt before they run.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PACKAGES := chatra-analytics chatra-client chatra-sandbox chatra-webhooks tap-chatra target-chatra-push
STAMP := $(VENV)/.installed
# uv (pinned in constraints.txt like the rest) installs the packages in seconds where pip
# takes a minute (compiling the bytecode up front, as pip does).
# Python keeps the bytecode of each module it compiles, in __pycache__/ (ignored by git), for
# every command run by make, whatever the shell says: where PYTHONDONTWRITEBYTECODE is set, as
# in many container images, each process compiled its imports from source again (dbt, Meltano,
# every plugin: about 2 s of CPU for each start of dbt), thousands of times in `make test`.
unexport PYTHONDONTWRITEBYTECODE

.PHONY: install browser test lint typecheck pytest demo bench soak constraints dist clean

$(STAMP): constraints.txt requirements-dev.txt $(foreach p,$(PACKAGES),$(p)/pyproject.toml)
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
		{ echo "Python 3.11 or newer is needed: run 'make PYTHON=python3.11 ...'"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	PIP_CONSTRAINT=$(CURDIR)/constraints.txt $(BIN)/python -m pip install --quiet uv
	$(BIN)/uv pip install --quiet --compile-bytecode --python $(BIN)/python \
		--constraint constraints.txt \
		$(foreach p,$(PACKAGES),-e ./$(p)) -r requirements-dev.txt
	touch $(STAMP)

install: $(STAMP)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: install
	$(BIN)/mypy

# Debian's chromium for the page tests, where apt can install it; they skip with the reason if not.
browser: install
	$(BIN)/python scripts/ensure_chromium.py

# Four workers on two cores: many tests wait on a subprocess, a server or a database. Each
# worker starts on its share of the tests and takes over half of another's when it runs out
# (worksteal); the ten slowest are listed. The few tests that measure a pace or a rate
# (`timing`) run afterwards, when nothing else competes for the cores: three workers, two
# tests each, as they mostly wait.
PYTEST_WORKERS ?= 4
pytest: install browser
	$(BIN)/pytest -m "not soak and not timing" --numprocesses=$(PYTEST_WORKERS) --dist=worksteal --durations=10
	$(BIN)/pytest -m "timing and not soak" --numprocesses=3 --dist=load

test: lint typecheck pytest

demo: install
	$(BIN)/python scripts/demo.py

bench: install
	$(BIN)/python bench/run.py

soak: install
	$(BIN)/pytest -m soak

# The wheels and sdists of the published packages, and Meltano definitions that install them
# (dist/hub/*.yml): see docs/own-project.md.
dist: install
	$(BIN)/python scripts/build_dist.py --outdir dist

# Re-pin every direct and transitive dependency after changing a pyproject.toml.
constraints: install
	$(BIN)/python -m pip freeze --exclude-editable | grep -v '^-e ' > constraints.txt

# output/dev/ and output/prod/ stay (only their contents go): target-duckdb needs them.
clean:
	rm -rf $(VENV) dist .meltano .chatra-push output/demo output/dev/* output/prod/* .pytest_cache .mypy_cache .ruff_cache
