# casuvo — the two commands (and a few more).  See README.md.
#   make demo   install everything, build and publish the demo survey, serve it
#   make test   the same set-up, then the whole test suite
#   make hub    JupyterHub beside the demo (casuvo hub up; CASUVO_HUB_PORT, default 8000)
#   make stop   stop the hub, the server and the database (data kept)
#   make clean  remove var/ (all generated state)

VENV   ?= var/venv
COMPUTE ?= var/venv-compute
CASUVO := $(VENV)/bin/casuvo
PYTEST_ARGS ?=
# the slowest tests of each suite are printed at the end (the test budget is 25 min)
DURATIONS ?= --durations=15

.PHONY: demo test stop clean install lint bench hub

install: var/.installed

var/.installed: deploy/local/install.sh deploy/local/mend_pgsphere.py setup.cfg pyproject.toml \
		deploy/local/requirements-compute.txt
	sh deploy/local/install.sh
	@touch $@

demo: install
	$(CASUVO) demo --no-progress

test: demo
	$(VENV)/bin/ruff check casuvo tests bench deploy pipelines
	$(VENV)/bin/lint-imports
	$(VENV)/bin/python -m pytest tests/unit tests/integration $(DURATIONS) $(PYTEST_ARGS)
	$(COMPUTE)/bin/python -m pytest tests/compute $(DURATIONS) $(PYTEST_ARGS)

lint: install
	$(VENV)/bin/ruff check casuvo tests bench deploy pipelines
	$(VENV)/bin/lint-imports

# Each bench writes its figures (value, same-run baseline, ratio, goal) to
# var/bench/<name>.json; bench/report.py makes bench/results.md and .json of them.
BENCH_OUT := var/bench
BENCHES := ingest positions cone concurrency load hostile adql_limits images ssa pipeline xmatch spectro psf

bench: demo
	mkdir -p $(BENCH_OUT)
	rm -f $(foreach b,$(BENCHES),$(BENCH_OUT)/$(b).json)
	$(VENV)/bin/python bench/ingest.py --json $(BENCH_OUT)/ingest.json
	$(VENV)/bin/python bench/positions.py --json $(BENCH_OUT)/positions.json
	$(VENV)/bin/python bench/cone.py --json $(BENCH_OUT)/cone.json
	$(VENV)/bin/python bench/concurrency.py --json $(BENCH_OUT)/concurrency.json
	$(VENV)/bin/python bench/load.py --seconds 30 --json $(BENCH_OUT)/load.json
	$(VENV)/bin/python bench/hostile.py --before bench/hostile_before.json --json $(BENCH_OUT)/hostile.json
	$(VENV)/bin/python bench/adql_limits.py --json $(BENCH_OUT)/adql_limits.json
	$(VENV)/bin/python bench/images.py --json $(BENCH_OUT)/images.json
	$(VENV)/bin/python bench/ssa.py --json $(BENCH_OUT)/ssa.json
	$(COMPUTE)/bin/python bench/pipeline.py --json $(BENCH_OUT)/pipeline.json
	$(COMPUTE)/bin/python bench/xmatch.py --json $(BENCH_OUT)/xmatch.json
	$(COMPUTE)/bin/python bench/spectro.py --json $(BENCH_OUT)/spectro.json --plot $(BENCH_OUT)/spectro_rv_snr.png
	$(COMPUTE)/bin/python bench/psf.py --json $(BENCH_OUT)/psf.json
	$(VENV)/bin/python bench/report.py $(foreach b,$(BENCHES),$(BENCH_OUT)/$(b).json)

hub: demo
	$(CASUVO) hub up

stop:
	@if [ -x $(CASUVO) ]; then $(CASUVO) hub down; $(CASUVO) down; fi

clean: stop
	rm -rf var
