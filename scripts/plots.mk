# Figures, reports and comparisons of wxbench runs. The top-level Makefile includes
# this file and sets PYTHON to an interpreter that has matplotlib and numpy.
#
#   make plots                      figures of the latest run under data/ into plots/<machine>/<run>/
#   make plots RUN=data/<m>/<run>   ... of that run
#   make plots-gnuplot [RUN=...]    toggle_latency and mprotect_tlb drawn by gnuplot (PNG)
#   make report [RUN=...]           plots/<machine>/<run>/report.html and report.md
#   make compare [RUNS="data/a/t1 data/b/t2"] [BASE=machine]
#                                   latest run per machine (or RUNS) side by side, into plots/compare/
#   make terminal-chart [RUN=...]   toggle_latency flip/patch medians drawn in the terminal
#
# "Latest" is the greatest run directory name (a UTC timestamp) across machines.

WXPLOTS_SCRIPTS := $(patsubst %/,%,$(dir $(lastword $(MAKEFILE_LIST))))
# Including this file must not change what a bare `make` builds.
WXPLOTS_DEFAULT_GOAL := $(.DEFAULT_GOAL)
WXPLOTS_DATA ?= data
GNUPLOT ?= gnuplot
RUN ?= $(shell $(WXPLOTS_PYTHON) $(WXPLOTS_SCRIPTS)/latest_run.py $(WXPLOTS_DATA) 2>/dev/null)
RUNS ?=
BASE ?=

# PYTHON comes from the includer; say so plainly when it is missing.
WXPLOTS_PYTHON = $(or $(PYTHON),$(error scripts/plots.mk: set PYTHON to a python with matplotlib and numpy))

.PHONY: plots plots-gnuplot report compare terminal-chart wxplots-need-run

wxplots-need-run:
	@test -n "$(RUN)" || { echo "no run under $(WXPLOTS_DATA)/: run 'make bench' first or pass RUN=data/<machine>/<run>" >&2; exit 2; }

plots: wxplots-need-run
	$(WXPLOTS_PYTHON) $(WXPLOTS_SCRIPTS)/plot.py $(RUN)

plots-gnuplot: wxplots-need-run
	$(WXPLOTS_PYTHON) $(WXPLOTS_SCRIPTS)/gnuplot_data.py $(RUN) --gnuplot $(GNUPLOT)

report: wxplots-need-run
	$(WXPLOTS_PYTHON) $(WXPLOTS_SCRIPTS)/report.py $(RUN)

compare:
	$(WXPLOTS_PYTHON) $(WXPLOTS_SCRIPTS)/compare.py $(RUNS) $(if $(BASE),--base $(BASE)) --data $(WXPLOTS_DATA)

terminal-chart: wxplots-need-run
	@$(WXPLOTS_PYTHON) $(WXPLOTS_SCRIPTS)/terminal_chart.py $(RUN) --gnuplot $(GNUPLOT)

.DEFAULT_GOAL := $(WXPLOTS_DEFAULT_GOAL)
