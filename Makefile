# Two commands for users (README): `make demo` and `make test`.
# Both create their own virtual environment on first use and reuse it after.
PYTHON ?= python3
VENV ?= .venv
# The SITE_TENSORFLOWS environment that Horovod is built into.
VENV_TF215 = .venv-tf215
CORES ?= 2
PIP_FLAGS ?= -q

.PHONY: site-tensorflows horovod demo lint test test-fast test-local test-slurm test-faults dry-run plan repair-records clean-demo bench-records bench-records-quick bench-dry-run \
	bench-training-step bench-input-pipeline bench-convergence bench-optimizer bench-compile-cache

$(VENV)/.installed: pyproject.toml setup.py src/bert_pretraining/_fast_instances.c
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install $(PIP_FLAGS) --upgrade pip
	$(VENV)/bin/pip install $(PIP_FLAGS) -e ".[workflow,train,test,parquet]"
	touch $@

# The TensorFlow versions that sites ship, each in its own environment, as a site's
# module would give them to the training jobs (training.python names its interpreter):
# 2.15 (Keras 2, the version Horovod builds against; the seed's), 2.16 (LUMI's ROCm
# container), 2.18 (Puhti's and Mahti's default module). The tests train, resume and export
# with each (tests/test_tensorflow_versions.py). One pip cache serves them all (pip's own,
# ~/.cache/pip): a wheel is downloaded once per machine.
SITE_TENSORFLOWS = 2.15.1 2.16.2 2.18.1
# Beside TensorFlow: the package with its own dependencies (pyproject.toml), and what the tests
# run inside the environment need.
SITE_TF_TEST_DEPS = pytest hypothesis
site_venv = .venv-tf$(subst .,,$(basename $(1)))
SITE_VENVS = $(foreach version,$(SITE_TENSORFLOWS),$(call site_venv,$(version)))

define site_tensorflow
$(call site_venv,$(1))/.installed: pyproject.toml
	$(PYTHON) -m venv $$(@D)
	$$(@D)/bin/pip install $(PIP_FLAGS) --upgrade pip
	$$(@D)/bin/pip install $(PIP_FLAGS) "tensorflow-cpu==$(1)" $(SITE_TF_TEST_DEPS) -e .
	touch $$@
endef
$(foreach version,$(SITE_TENSORFLOWS),$(eval $(call site_tensorflow,$(version))))

site-tensorflows: $(addsuffix /.installed,$(SITE_VENVS))

# Horovod 0.28.1 (Gloo, no MPI) into the TF 2.15 environment: its last release
# builds only against TF 2.15. About 10 minutes on 2 cores; needs cmake and g++.
$(VENV_TF215)/.horovod: $(VENV_TF215)/.installed tools/build_horovod.sh
	tools/build_horovod.sh $(VENV_TF215)
	touch $@

horovod: $(VENV_TF215)/.horovod

demo: $(VENV)/.installed
	$(VENV)/bin/python -m bert_pretraining.locks
	$(VENV)/bin/snakemake --configfile demo/config.yaml --cores $(CORES)
	$(VENV)/bin/python workflow/scripts/status.py --configfile demo/config.yaml

# Test tiers, by the markers in pyproject.toml ([tool.pytest.ini_options]).
# Two pytest-xdist workers: the serial suite keeps about 1.2 of the 2 cores busy (SLURM
# polling, process start-up); tests/worker_groups.py keeps the tests that share the SLURM
# cluster, the demo run or a module's fixtures on one worker. TEST_WORKERS=0 runs one process
# (the README gives the measured times of both).
TEST_WORKERS ?= 2
PYTEST = $(VENV)/bin/python -m pytest -n $(TEST_WORKERS)
FAST_TESTS = not snakemake and not slow and not site_tf and not slurm and not distributed and not faults
LOCAL_TESTS = not slurm and not site_tf

# Everything, as CI runs it (.ci/run): lint, then every test, with the site TensorFlows, Horovod and the SLURM test cluster.
test: $(VENV)/.installed lint site-tensorflows $(VENV_TF215)/.horovod
	$(PYTEST)

# Unit tests only: no Snakemake (not even -n), no SLURM, no .venv-tf215, no fault injection; about 2 minutes.
# One process: these keep both cores busy, and two workers took longer (2 min 42 s vs 2 min 33 s).
test-fast: $(VENV)/.installed
	$(VENV)/bin/python -m pytest -m "$(FAST_TESTS)"

# Everything this machine can run without the SLURM cluster or .venv-tf215: workflows, faults, multi-process training.
test-local: $(VENV)/.installed
	$(PYTEST) -m "$(LOCAL_TESTS)"

# The tests on the SLURM test cluster (started and stopped by the tests; needs root).
test-slurm: $(VENV)/.installed
	$(PYTEST) -m slurm

# The fault-injection tests alone (kill -9, full disk, signals; several minutes).
test-faults: $(VENV)/.installed
	$(PYTEST) -m faults

# The Snakefile and rules: snakefmt's formatting, and `snakemake --lint` with no lint but
# those rules/common.smk explains ("Lints left on purpose"; Snakemake cannot be told to skip one).
LINT_EXPLAINED = Specify a conda environment or container for each rule\.|Shell command directly uses variable (PYTHON|TRAINING_PYTHON|SCRIPTS) from outside of the rule
lint: $(VENV)/.installed
	$(VENV)/bin/snakefmt --check Snakefile rules/
	@out=$$($(VENV)/bin/snakemake --lint --configfile demo/config.yaml 2>&1); status=$$?; \
	if [ $$status -ne 0 ] && ! printf '%s\n' "$$out" | grep -q '^Lints for '; then \
		printf '%s\n' "$$out"; echo "snakemake --lint failed"; exit 1; fi; \
	left=$$(printf '%s\n' "$$out" | grep '^    \* ' | grep -Ev '$(LINT_EXPLAINED)'); \
	if [ -n "$$left" ]; then printf '%s\n' "$$out"; \
		printf 'snakemake --lint: lints not explained in rules/common.smk:\n%s\n' "$$left"; exit 1; fi; \
	echo "snakemake --lint: only the lints rules/common.smk explains"

dry-run: $(VENV)/.installed
	$(VENV)/bin/snakemake -n

# The training plan and the disk it needs: config.yaml, with CONFIG="mine.yaml ..." merged
# over it as `snakemake --configfile mine.yaml` merges it; PROFILE=profiles/slurm adds the
# training jobs' ranks and global batch (and refuses what `snakemake -n` would).
CONFIG ?=
PROFILE ?=
plan: $(VENV)/.installed
	$(VENV)/bin/python workflow/scripts/plan.py $(if $(CONFIG),--configfile $(CONFIG)) $(if $(PROFILE),--profile $(PROFILE))

# Remake the damaged or missing record files of the run of CONFIG, byte-identical (workflow/scripts/repair_records.py).
repair-records: $(VENV)/.installed
	$(VENV)/bin/python workflow/scripts/repair_records.py $(if $(CONFIG),--configfile $(CONFIG)) --cores $(CORES)

clean-demo:
	rm -rf results/demo

# Benchmarks (not tests): each prints its figures beside the reference or goal.
bench-records: $(VENV)/.installed
	$(VENV)/bin/python benchmarks/records_benchmark.py
bench-records-quick: $(VENV)/.installed
	$(VENV)/bin/python benchmarks/records_benchmark.py --quick
bench-dry-run: $(VENV)/.installed
	$(VENV)/bin/python benchmarks/dry_run_benchmark.py
bench-training-step: $(VENV)/.installed
	$(VENV)/bin/python benchmarks/training_step_benchmark.py
bench-input-pipeline: $(VENV)/.installed
	$(VENV)/bin/python benchmarks/input_pipeline_benchmark.py
bench-convergence: $(VENV)/.installed
	$(VENV)/bin/python benchmarks/convergence_benchmark.py
bench-optimizer: $(VENV)/.installed
	$(VENV)/bin/python benchmarks/optimizer_benchmark.py
bench-compile-cache: $(VENV)/.installed
	$(VENV)/bin/python benchmarks/compile_cache_benchmark.py
