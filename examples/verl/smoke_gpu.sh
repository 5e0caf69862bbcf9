#!/usr/bin/env bash
# GPU smoke test (one node, one GPU, a small model, a few steps): checks V0.5's data path end to end:
# the prior column reaches the estimator, top-ups are generated, merged into their parent's group and trained on.
# NOT RUN HERE (no GPU on the development machine). Run it whenever a GPU is available:
#   MODEL=Qwen/Qwen2.5-0.5B-Instruct bash examples/verl/smoke_gpu.sh
# Pass: the run finishes, and the log shows v05/prior/mean (the prior reached the estimator),
# v05/rollouts/top_up_rollouts > 0 and v05/rollouts/per_prompt > 2 (top-ups merged), then "SMOKE OK".
set -euo pipefail
MODEL=${MODEL:-Qwen/Qwen2.5-0.5B-Instruct}
HERE=$(cd "$(dirname "$0")" && pwd)
WORK=${WORK:-/tmp/v05_verl_smoke}
mkdir -p "$WORK"
SHARED=${SHARED:-$HERE/../../../shared/data}
# 64 GSM8K-style prompts as "training" data, MATH500 as validation; context: the v0_demo table.
python - "$SHARED" "$WORK" <<'PY'
import json, sys
shared, work = sys.argv[1], sys.argv[2]
with open(f"{work}/train.jsonl", "w") as f:
    for i, line in enumerate(open(f"{shared}/math_benchmarks/gsm8k_test.jsonl")):
        if i == 64:
            break
        row = json.loads(line)
        f.write(json.dumps({"problem": row["question"], "answer": row["answer"].split("####")[-1].strip(), "id": i}) + "\n")
PY
HF_HUB_OFFLINE=1 python "$HERE/prepare_data.py" --train "$WORK/train.jsonl" --out "$WORK" \
    --context "$SHARED/v0_demo" --context-policy Qwen3-4B-Instruct@16
python -c "import pandas as pd; d = pd.read_parquet('$WORK/train.parquet'); d.head(32).to_parquet('$WORK/val.parquet')"

python -m v05.integrations.verl.main \
    data.train_files="$WORK/train.parquet" data.val_files="$WORK/val.parquet" \
    data.train_batch_size=16 data.max_prompt_length=512 data.max_response_length=512 \
    actor_rollout_ref.model.path="$MODEL" actor_rollout_ref.rollout.name=vllm \
    actor_rollout_ref.rollout.n=2 actor_rollout_ref.rollout.gpu_memory_utilization=0.4 \
    actor_rollout_ref.actor.ppo_mini_batch_size=8 actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu=4 \
    actor_rollout_ref.rollout.log_prob_micro_batch_size_per_gpu=4 \
    algorithm.adv_estimator=v05 algorithm.use_kl_in_reward=false actor_rollout_ref.actor.use_kl_loss=false \
    reward.custom_reward_function.path="$HERE/reward.py" \
    trainer.v1.trainer_mode=v05_sync \
    trainer.v1.sampler.custom_sampler.path=pkg://v05.integrations.verl.sampler \
    trainer.v1.sampler.custom_sampler.name=V05ReplayBuffer \
    +v05.rollouts.mode=osla +v05.rollouts.osla.k_init=2 +v05.rollouts.osla.k_max=6 +v05.rollouts.osla.cost=0 \
    +v05.rollouts.osla.max_rounds=2 \
    trainer.nnodes=1 trainer.n_gpus_per_node=1 trainer.total_training_steps=3 trainer.val_before_train=false \
    trainer.test_freq=-1 trainer.save_freq=-1 trainer.logger='[console]' \
    trainer.project_name=v05_smoke trainer.experiment_name=smoke 2>&1 | tee "$WORK/train.log"

python - "$WORK/train.log" <<'PY'
import re, sys
log = open(sys.argv[1]).read()
def values(name):
    return [float(v) for v in re.findall(rf"{re.escape(name)}:(-?[0-9.eE+-]+)", log)]
prior, top_ups, per_prompt = values("v05/prior/mean"), values("v05/rollouts/top_up_rollouts"), values("v05/rollouts/per_prompt")
assert prior, "v05/prior/mean never logged: the prior did not reach the estimator"
assert top_ups and max(top_ups) > 0, "no top-up rollouts: OSLA never asked for more (cost=0 should)"
assert per_prompt and max(per_prompt) > 2, "groups did not grow past k_init: top-ups were not merged"
print(f"SMOKE OK: prior mean {prior[-1]:.3f}, top-up rollouts {top_ups}, rollouts per prompt {per_prompt}")
PY
