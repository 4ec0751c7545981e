# The two commands that matter: `make demo` (everything, end to end) and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: venv demo serve test lint bench clean

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

demo: venv
	$(PY) -m pipeline $(ARGS)

serve: venv
	$(PY) -m botify serve $(ARGS)

lint: venv
	$(PY) -m ruff check .

test: lint
	$(PY) -m pytest $(ARGS)

clean:
	rm -rf $(VENV) data log results
