# Two commands for a newcomer:  `make run`  (set up and start the hotline)  and  `make test`.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-$(shell cat requirements.txt requirements-dev.txt pyproject.toml | cksum | cut -d' ' -f1)
PYTEST_ARGS ?=

.PHONY: setup run test lint check clean i18n

$(STAMP):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements-dev.txt -e .
	rm -f $(VENV)/.installed-*; touch $(STAMP)

setup: $(STAMP)

run: setup  ## the hotline on the embedded default: web, worker, redis; prints the simulator URL
	$(VENV)/bin/hotline run

test: setup  ## the whole suite, in parallel; the backend comes from DATABASE_URL / REDIS_URL
	$(PY) -m pytest -n auto --dist loadgroup $(PYTEST_ARGS)

lint: setup
	$(VENV)/bin/ruff check hotline workers tests bench
	$(VENV)/bin/mypy

check: setup  ## validate the IVR and SMS scripts and the audio set
	$(VENV)/bin/hotline scripts check

i18n: setup  ## Khmer drafts in dict style (i18n.KM_PENDING, or FROM=other/i18n.py) -> hotline/translations/km .po
	$(PY) -m hotline.catalog $(if $(FROM),--from-dicts $(FROM)) && $(PY) -m hotline.catalog --check

clean:
	rm -rf $(VENV) instance .pytest_cache .mypy_cache .ruff_cache
