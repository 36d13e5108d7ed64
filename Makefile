# The two commands of the README: `make demo` runs the system, `make test` runs every check.
VENV ?= .venv
PYTHON ?= python3
BIN = $(VENV)/bin

.PHONY: demo test lint bench docs clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[demo,test]'
	touch $@

demo: $(BIN)/.installed
	$(BIN)/ldl demo

lint: $(BIN)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy .

# pytest exits non-zero when no test ran, so an empty run can never pass.
test: lint
	$(BIN)/python -m pytest

bench: $(BIN)/.installed
	$(BIN)/python -m bench

# docs/report-page-1.png, the README's picture of a report's first page: the PDF test renders
# the constructed trial's report and keeps page 1 (needs PostgreSQL, as `make test` does).
docs: $(BIN)/.installed
	LDL_REPORT_DOCS=1 $(BIN)/python -m pytest tests/evaluation/test_report.py -q -k pdf

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
