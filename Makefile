# Thin: every target calls the one CLI or pytest. `make test` and `make bench` set up .venv first.
DEVICE ?= cpu
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(DEVICE)

# On a CPU machine take the CPU build of torch (a plain `pip install torch` pulls a multi-GB
# CUDA build); on a CUDA machine the normal build, and the GPU runtimes.
ifeq ($(DEVICE),cpu)
  TORCH := torch==2.13.0
  EXTRAS := cpu,dev
else
  TORCH := torch
  EXTRAS := gpu,dev
endif

.PHONY: setup test bench lint clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q "$(TORCH)"
	$(BIN)/python -m pip install -q -e ".[$(EXTRAS)]"
	rm -f $(VENV)/.installed-*
	touch $@

test: setup
	$(BIN)/python -m pytest tests $(PYTEST_ARGS)

bench: setup
	$(BIN)/resnet-bench flops --variant both
	$(BIN)/resnet-bench time --depth 50 --batch 1

lint: setup
	$(BIN)/ruff check resnet_bench exporters tests benchmarks

clean:
	rm -rf $(VENV) artifacts .pytest_cache
