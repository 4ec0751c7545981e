# The two commands that matter: `make demo` (everything, end to end) and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: venv demo serve test lint bench bench-tools clean

venv: $(VENV)/.installed

# The serving stack at the versions the image installs (deploy/constraints.txt): what is tested is what ships.
$(VENV)/.installed: pyproject.toml deploy/constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]' -c deploy/constraints.txt
	touch $@

demo: venv
	$(PY) -m pipeline $(ARGS)

serve: venv
	$(PY) -m botify serve $(ARGS)

lint: venv
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

test: lint
	$(PY) -m pytest $(ARGS)

# Benchmarks (figures in README): the serving ones need wrk and nginx (Debian packages) and py-spy.
SUDO := $(shell [ "$$(id -u)" -eq 0 ] || echo sudo)  # apt-get as root; through sudo otherwise

bench-tools: venv
	command -v wrk >/dev/null && command -v nginx >/dev/null || ($(SUDO) apt-get update && $(SUDO) apt-get install -y wrk nginx)
	$(PY) -m pip install --quiet py-spy==0.4.3

bench: bench-tools
	$(PY) bench/sim_speed.py
	$(PY) bench/sim_remote.py
	$(PY) bench/models_scale.py
	$(PY) bench/ab_report.py
	$(PY) bench/serving_load.py
	$(PY) bench/serving_load.py --experiment AA
	$(PY) bench/serving_profile.py --gil
	$(PY) bench/serving_inprocess.py
	$(PY) bench/serving_nginx.py

clean:
	rm -rf $(VENV) data log results
