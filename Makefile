# customer_segmentation: the two README commands are `make run` and `make test`.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# make run executes NOTEBOOKS in this order (each writes what it finds to results/; 06_deploy, the scoring job, last).
# LIBRARY_NOTEBOOKS are the other chapters, story and internals (nbs/foundations, nbs/scoring, nbs/fit), by their path
# in nbs/: make test runs them (nbdev_test), make run does not.
# Research notebooks (nbs/research/) are in neither: they are run by hand (see each one's summary). tests/test_repo.py
# checks that every numbered notebook is in exactly one list.
NOTEBOOKS := 01_data 02_eda 03_preprocessing 05_modelling 06_deploy
LIBRARY_NOTEBOOKS := 04_evaluation 07_drift 08_partitions 09_labels 10_cli \
  foundations/00_errors foundations/00a_files foundations/00b_report foundations/01a_fetch foundations/01b_artifact foundations/01c_metrics foundations/01d_prediction_sets foundations/01e_model_card \
  scoring/04a_columns scoring/04b_formats scoring/04c_customer_files scoring/04d_scoring_rules scoring/04e_scoring_spec \
  scoring/04f_lookup_tables scoring/04g_drift_check scoring/04h_numpy_engine scoring/04i_run_summary \
  fit/04j_preprocessing_export fit/04k_scoring_params fit/09a_retrain
# nbdev_test skips folders matching this (nbdev's default, plus research/)
NBTEST_SKIP := ^([_.]|research$$)
export TF_CPP_MIN_LOG_LEVEL := 2
export TF_ENABLE_ONEDNN_OPTS := 0
export PYTHONHASHSEED := 0

.PHONY: setup hooks data run test readme docs browser bench cv-estimate blend-cv clean-runs bench-drift bench-dask

## setup: create .venv with the package (editable), its training, Dask and dev dependencies at the versions of .ci/constraints.txt
## (those saved_model/ was trained with), and install nbdev's hooks (make hooks)
setup: $(STAMP)
	@$(MAKE) --no-print-directory hooks
$(STAMP): settings.ini setup.py .ci/constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c .ci/constraints.txt -e '.[dev,train,dask]'
	touch $@

## hooks: in a git checkout, nbdev's hooks: JupyterLab cleans notebooks when it saves them (nbdev_install_hooks, with
## jupyter_hooks = True in settings.ini), git cleans them when they are committed (a clean filter cleaning as nbdev_clean does: outputs
## kept, execution counts and kernel metadata dropped; tests/nbclean.py) and merges them with nbdev_merge, each from .venv
## (no activated environment needed). Anywhere else it only says so.
HOOK_CLEAN := $(BIN)/python tests/nbclean.py
hooks:
	@if [ "$$(git rev-parse --show-toplevel 2>/dev/null)" != "$$(pwd -P)" ]; then \
	  echo "hooks: not a git checkout: nbdev's git hooks not installed"; \
	elif [ "$$(git config --local --get filter.nbdev-clean.clean)" = "$(HOOK_CLEAN)" ] \
	     && grep -qs nbdev_clean_jupyter "$${HOME:-/nonexistent}/.jupyter/jupyter_server_config.py"; then :; \
	elif PATH="$(abspath $(BIN)):$$PATH" $(BIN)/nbdev_install_hooks >/dev/null; then \
	  git config --local filter.nbdev-clean.clean "$(HOOK_CLEAN)"; \
	  git config --local merge.nbdev-merge.driver "$(BIN)/nbdev_merge %O %A %B %P"; \
	  printf '#!/bin/bash\n%s/nbdev_trust\n' "$(BIN)" > "$$(git rev-parse --git-path hooks)/post-merge"; \
	  grep -qxF '*.ipynb filter=nbdev-clean' .gitattributes 2>/dev/null || echo '*.ipynb filter=nbdev-clean' >> .gitattributes; \
	  echo "hooks: notebooks are cleaned when JupyterLab saves them and when git commits them"; \
	else echo "hooks: nbdev_install_hooks failed: notebooks are not cleaned at save or commit (make test still checks them)" >&2; fi

## data: copy and verify the CSVs into dataset/
data: setup
	$(BIN)/custseg data fetch

# papermill as make run uses it; the kernels' notice that they talk over local TCP (ipykernel, once per notebook) is dropped from the log
PAPERMILL = $(BIN)/papermill --cwd nbs --log-level WARNING
QUIET_KERNEL = 2> >(grep -v --line-buffered 'Kernel is running over TCP without encryption' >&2)

## run: the main job, every notebook executed in order with papermill (executed copies in runs/); it ends by
## scoring dataset/new_customers.csv into results/new_customers_scored.csv with nbs/06_deploy.ipynb
run: data
	mkdir -p runs results
	@for nb in $(filter-out 06_deploy,$(NOTEBOOKS)); do \
	  echo "== $$nb"; \
	  $(PAPERMILL) nbs/$$nb.ipynb runs/$$nb.ipynb $(QUIET_KERNEL); \
	done
	@echo "== 06_deploy: scoring dataset/new_customers.csv"
	@$(PAPERMILL) nbs/06_deploy.ipynb runs/06_deploy.ipynb \
	  -p input_path dataset/new_customers.csv -p output_path results/new_customers_scored.csv $(QUIET_KERNEL)
	test -s results/new_customers_scored.csv
	echo "== scored customers: results/new_customers_scored.csv (summary in runs/06_deploy.ipynb)"

## test: all tests: notebooks under nbdev_test, pytest (incl. export/clean checks, the docs site in headless Chromium)
test: data browser
	$(BIN)/nbdev_test --n_workers 2 --skip_folder_re '$(NBTEST_SKIP)'
	$(BIN)/python -m pytest tests -q

## readme: re-execute nbs/index.ipynb (its tables and figures come from results/) and write README.md from it (tests check they agree)
readme: $(STAMP)
	cd nbs && ../$(BIN)/jupyter nbconvert --to notebook --execute --inplace --log-level WARN index.ipynb
	$(BIN)/nbdev_clean --fname nbs/index.ipynb
	$(BIN)/python tests/readme.py --write

## docs: build the docs site into _docs/ (nbdev_docs where Quarto is installed, else Sphinx + MyST-NB offline; docs/build.py)
docs: $(STAMP)
	$(BIN)/python docs/build.py

## browser: Debian's chromium for the docs browser test (tests/test_docs.py), installed with apt only when missing
browser:
	@test -x /usr/bin/chromium || { SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  $$SUDO apt-get update -qq && $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; }

## bench: a cold `custseg score` of new_customers.csv, 10^6 and 10^7 rows, each vs the pandas read+write process of the same file,
## the prediction sets' cost at 10^6 rows (vs --no-sets)
## (medians, ratios, peak memory), then the agreement with the training-time pipeline on every row (about 10 minutes; not a test)
bench: $(STAMP)
	$(BIN)/python bench/score_speed.py

## bench-dask: 10^7 rows in 20 Parquet partitions scored on a local Dask cluster of 1 and of 2 workers: rows/s, scaling efficiency,
## peak memory per worker (a few minutes; not a test)
bench-dask: $(STAMP)
	$(BIN)/python bench/dask_scale.py

## bench-drift: what the drift check costs a scoring run of 10^6 rows, with and without it, medians (a few minutes; not a test)
bench-drift: $(STAMP)
	$(BIN)/python bench/drift_cost.py

## cv-estimate: the network's CV accuracy over 4 training-seed draws, 5-fold and 10-fold (about 17 minutes; not a test)
cv-estimate: data
	$(BIN)/python bench/cv_estimate.py

## blend-cv: what averaging the network with gradient boosting would score, 5- and 10-fold (about 4 minutes; not a test; not shipped)
blend-cv: data
	$(BIN)/python bench/blend_cv.py

clean-runs:
	rm -rf runs
