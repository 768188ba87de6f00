# make bench: every benchmark in bench/, tables to bench/results.md (make bench-quick: smaller runs)
PYTHON ?= .venv/bin/python

.PHONY: bench bench-quick

bench:
	$(PYTHON) bench/run_all.py

bench-quick:
	$(PYTHON) bench/run_all.py --quick
