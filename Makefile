# Two commands on a fresh clone: `make demo` and `make test`. Both create .venv if missing.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.mbolake-installed

.PHONY: setup demo lint test test-fast bench lab mlflow-ui clean-lake strip-notebooks contract

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	$(PY) -m ipykernel install --sys-prefix --name mbolake --display-name "mbolake (.venv)" >/dev/null
	$(VENV)/bin/mbolake warm    # resolves Delta Lake + Spark Kafka (~/.cache/mbolake/ivy) and the Kafka broker (~/.cache/mbolake/kafka) once
	touch $(STAMP)

setup: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/mbolake demo

# ruff (pyflakes, import order, bugbear) and the layer contracts of pyproject.toml [tool.importlinter]
lint: $(STAMP)
	$(VENV)/bin/ruff check lib tests benchmarks; status=$$?; \
	$(VENV)/bin/lint-imports --no-cache || status=1; \
	exit $$status

test: $(STAMP)
	$(PY) -m pytest -q

test-fast: $(STAMP)
	$(PY) -m pytest -q -m "not slow and not spark and not notebooks and not serve and not kafka and not browser"

bench: $(STAMP)
	$(PY) benchmarks/run.py

lab: $(STAMP)
	$(VENV)/bin/jupyter lab --notebook-dir=notebooks

mlflow-ui: $(STAMP)
	$(VENV)/bin/mlflow ui --backend-store-uri sqlite:///mlruns.db --default-artifact-root ./mlartifacts --host 127.0.0.1

strip-notebooks: $(STAMP)
	$(PY) -m mbolake.runtime.notebook_tools strip notebooks

# docs/data-contract.md from the code that declares it (tests/test_data_contract_doc.py keeps it in step)
contract: $(STAMP)
	$(PY) -m mbolake.contract_doc docs/data-contract.md

clean-lake:
	rm -rf lake runs spark-warehouse
