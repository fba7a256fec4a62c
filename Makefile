# Two commands on a fresh machine: `make demo` and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install demo test stress mutate mutate-rules

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# torch first, on its own: asked for directly, pip takes the CPU wheel that lies on our machines;
	# pulled in as a dependency it may pick the multi-GB CUDA build instead.
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

# The main job on the embedded default (local Ray, SQLite, local artifact store): digits → a served model.
demo: install
	$(VENV)/bin/aidc run examples/digits/pipeline.yaml

# The gates first (lint, format, types, the layer rule), then the suite. PYTHONFAULTHANDLER: should a native library
# crash the interpreter (even as it exits, after the tests), every thread's Python stack is printed instead of a bare
# "Segmentation fault". Should something end pytest without its summary, tools/test_death.py names the test it was
# running (tests/conftest.py keeps it in .pytest-running) and prints the tail of its Ray driver's log.
CHECKED := src tests benchmarks examples tools
test: install
	$(VENV)/bin/ruff check $(CHECKED)
	$(VENV)/bin/ruff format --check $(CHECKED)
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports
	PYTHONFAULTHANDLER=1 AIDC_TEST_RUNNING=$(CURDIR)/.pytest-running $(VENV)/bin/pytest -q \
	  || { rc=$$?; $(VENV)/bin/python tools/test_death.py $(CURDIR)/.pytest-running; exit $$rc; }

# The suite on a loaded machine (issue 23; docs/testing.md): two CPU hogs (stress-ng) for as long as the suite runs,
# and the tests in two streams, a file's tests together. Ray runs its workers at nice 15, so against the hogs one
# stream's training crawls; a second stream doubles the share the niced workers get (two passes of the serial
# suite did not fit in a working session here).
stress: install
	stress-ng --cpu 2 --timeout 6h >/dev/null & hogs=$$!; \
	  PYTHONFAULTHANDLER=1 $(VENV)/bin/pytest -q -n 2 --dist loadfile; rc=$$?; kill $$hogs; exit $$rc

# Mutation testing (not in CI: it runs the covering tests once per mutant, an hour and more on 2 cores). Modules and
# the tests that may kill their mutants are in pyproject.toml [tool.mutmut]; one module at a time with e.g.
#   make mutate MUTANTS='aidc.security.audit*'
# then `mutmut results` lists the survivors and `mutmut show NAME` shows one. Score: docs/testing.md.
# tools/mutate.py is mutmut with the `@rule(...)` functions mutated too (plain mutmut skips every decorated function).
MUTANTS ?= aidc.security.audit* aidc.security.tokens* aidc.security.roles* aidc.security.policy* aidc.jobs.queue* \
	aidc.services.guard* aidc.standards.*
mutate: install
	$(VENV)/bin/pip install -q -e '.[mutate]'
	$(PY) tools/mutate.py run $(foreach m,$(MUTANTS),'$(m)')
	$(VENV)/bin/mutmut results

# mutmut skips decorated functions, so every @rule body: this flips each comparison and and/or inside them, one mutant
# at a time in a copy of src/, and runs the standards suites (docs/testing.md, "Rule bodies"). Some modules only:
#   make mutate-rules RULE_MODULES='power network'   (add ARGS=--json for JSON)
RULE_MODULES ?=
mutate-rules: install
	$(PY) tests/mutation/rule_bodies.py $(ARGS) $(RULE_MODULES)
