# The two commands of the README: `make demo` runs the system, `make test` runs every check.
VENV ?= .venv
PYTHON ?= python3
BIN = $(VENV)/bin

.PHONY: demo test lint bench docs clean vendor screenshots

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
	LDL_REPORT_DOCS=1 $(BIN)/python -m pytest tests/evidence/test_report.py -q -k pdf

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache

# htmx is vendored from the npm registry (care-home networks are closed: no CDN at run time).
# The file is committed; `make vendor` fetches it again, e.g. after changing HTMX_VERSION.
HTMX_VERSION = 2.0.11
vendor:
	tmp=$$(mktemp -d) && cd $$tmp && npm pack -q htmx.org@$(HTMX_VERSION) >/dev/null \
	  && tar -xzf htmx.org-$(HTMX_VERSION).tgz package/dist/htmx.min.js package/LICENSE \
	  && cp package/dist/htmx.min.js $(CURDIR)/web/static/vendor/htmx.min.js \
	  && cp package/LICENSE $(CURDIR)/web/static/vendor/htmx.LICENSE && rm -rf $$tmp

# Screenshots of the main pages for the README (a browser test writes them).
screenshots: $(BIN)/.installed
	LDL_SCREENSHOTS=1 $(BIN)/python -m pytest tests/web/test_screenshots.py tests/web/test_coordinator_flow.py -q
