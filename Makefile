# customer_segmentation: the two README commands are `make run` and `make test`.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
NOTEBOOKS := 00_data 01_eda 02_preprocessing 03_modelling 04_deploy
export TF_CPP_MIN_LOG_LEVEL := 2
export TF_ENABLE_ONEDNN_OPTS := 0
export PYTHONHASHSEED := 0

.PHONY: setup data run test readme docs browser bench cv-estimate blend-cv clean-runs

## setup: create .venv with the package (editable) and its dev dependencies
setup: $(STAMP)
$(STAMP): settings.ini setup.py
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $@

## data: copy and verify the CSVs into dataset/
data: $(STAMP)
	$(BIN)/custseg data fetch

## run: the main job, every notebook executed in order with papermill (executed copies in runs/); it ends by
## scoring dataset/new_customers.csv into results/new_customers_scored.csv with nbs/04_deploy.ipynb
run: data
	mkdir -p runs results
	for nb in $(filter-out 04_deploy,$(NOTEBOOKS)); do \
	  [ -f nbs/$$nb.ipynb ] || continue; \
	  echo "== $$nb"; \
	  $(BIN)/papermill --cwd nbs --log-level WARNING nbs/$$nb.ipynb runs/$$nb.ipynb; \
	done
	echo "== 04_deploy: scoring dataset/new_customers.csv"
	$(BIN)/papermill --cwd nbs --log-level WARNING nbs/04_deploy.ipynb runs/04_deploy.ipynb \
	  -p input_path dataset/new_customers.csv -p output_path results/new_customers_scored.csv
	test -s results/new_customers_scored.csv
	echo "== scored customers: results/new_customers_scored.csv (summary in runs/04_deploy.ipynb)"

## test: all tests: notebooks under nbdev_test, pytest (incl. export/clean checks, the docs site in headless Chromium)
test: data browser
	$(BIN)/nbdev_test --n_workers 2
	$(BIN)/python -m pytest tests -q

## readme: regenerate README.md from nbs/index.ipynb (Quarto-free; tests check they agree)
readme: $(STAMP)
	$(BIN)/python tests/readme.py --write

## docs: build the docs site into _docs/ (nbdev_docs where Quarto is installed, else Sphinx + MyST-NB offline; docs/build.py)
docs: $(STAMP)
	$(BIN)/python docs/build.py

## browser: Debian's chromium for the docs browser test (tests/test_docs.py), installed with apt only when missing
browser:
	@test -x /usr/bin/chromium || { SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  $$SUDO apt-get update -qq && $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; }

## bench: speed and peak memory of batch scoring at 10^4, 10^5, 10^6 rows vs the original approach (minutes; not a test)
bench: $(STAMP)
	$(BIN)/python bench/score_speed.py

## cv-estimate: the network's CV accuracy over 4 training-seed draws, 5-fold and 10-fold (about 17 minutes; not a test)
cv-estimate: data
	$(BIN)/python bench/cv_estimate.py

## blend-cv: what averaging the network with gradient boosting would score, 5- and 10-fold (about 4 minutes; not a test; not shipped)
blend-cv: data
	$(BIN)/python bench/blend_cv.py

clean-runs:
	rm -rf runs
