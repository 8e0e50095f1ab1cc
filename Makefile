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
  EXTRAS := cpu,dev,fleet
else ifeq ($(DEVICE),cuda)
  ifeq ($(shell nvidia-smi -L >/dev/null 2>&1 && echo yes),)
    $(error DEVICE=cuda: no NVIDIA GPU here (nvidia-smi -L failed); use DEVICE=cpu)
  endif
  TORCH := torch
  EXTRAS := gpu,dev
  # TensorRT's wheels are not on every index: without it, its cells say 'unavailable'.
  FALLBACK := || $(BIN)/python -m pip install -q -e ".[dev]" onnxruntime-gpu
else
  $(error DEVICE must be cpu or cuda, got '$(DEVICE)')
endif

.PHONY: setup test bench select report gate fleet lint clean gpu-check

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q "$(TORCH)"
	$(BIN)/python -m pip install -q -e ".[$(EXTRAS)]" $(FALLBACK)
	rm -f $(VENV)/.installed-*
	touch $@

test: setup
	$(BIN)/python -m pytest tests $(PYTEST_ARGS)

PROFILE ?= quick
BENCH_ARGS = --device $(DEVICE) --profile $(PROFILE) $(if $(DEPTHS),--depths $(DEPTHS)) \
	$(if $(BATCHES),--batches $(BATCHES)) $(if $(BACKENDS),--backends $(BACKENDS))

bench: setup
	$(BIN)/resnet-bench bench $(BENCH_ARGS)

# Race the candidates for one depth under a budget (SELECT_ARGS="--max-latency-ms 100").
select: setup
	$(BIN)/resnet-bench select --device $(DEVICE) $(SELECT_ARGS)

# One sweep across an existing Ray cluster (docs/fleet.md): make fleet ADDRESS=HOST:PORT [PRICES=FILE].
fleet: setup
	@test -n "$(ADDRESS)" || { echo "make fleet: give ADDRESS=HOST:PORT (a Ray cluster, docs/fleet.md)"; exit 2; }
	$(BIN)/resnet-bench fleet --address $(ADDRESS) --profile $(PROFILE) $(if $(PRICES),--prices $(PRICES)) $(FLEET_ARGS)

# The latest run under results/runs, rendered to results/report/.
LATEST_RUN = $(lastword $(sort $(wildcard results/runs/*/)))
report: setup
	@test -n "$(LATEST_RUN)" || { echo "make report: no run under results/runs (run make bench first)"; exit 2; }
	$(BIN)/resnet-bench report $(LATEST_RUN) --out results/report $(REPORT_ARGS)

# PR gate: the base ref (default: merge-base with main) against the working tree, same job.
gate: setup
	$(BIN)/resnet-bench gate $(if $(REF),--ref $(REF)) $(GATE_ARGS)

# The prepared GPU check (README "The GPU check"): no set-up and nothing fetched, it runs with the
# python the project is installed in (.venv's if there is one, else PYTHON). Without a GPU: one
# line, exit 2. GPU_CHECK_ROOT: where its gpu-<gpu name>/ folder goes (default results).
GPU_PYTHON ?= $(if $(wildcard $(BIN)/python),$(BIN)/python,$(PYTHON))
gpu-check:
	@$(GPU_PYTHON) benchmarks/gpu_check.py $(if $(GPU_CHECK_ROOT),--root $(GPU_CHECK_ROOT)) $(GPU_CHECK_ARGS)

# ruff, then the import layers (pyproject.toml [tool.importlinter]: layers, no CLI import, no cycles)
lint: setup
	$(BIN)/ruff check resnet_bench exporters tests benchmarks
	$(BIN)/lint-imports --no-cache

clean:
	rm -rf $(VENV) artifacts .pytest_cache
