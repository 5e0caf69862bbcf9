#!/usr/bin/env bash
# verl GPU smoke run (one node, one GPU, a small model, 3 steps, under 10 minutes): checks V0.5's data path end to
# end: the prior column reaches the estimator, top-ups are generated, merged into their parent's group and trained on.
# NOT RUN HERE (no GPU on the development machine). `make gpu-smoke` runs it with the TRL smoke run; alone:
#   MODEL=Qwen/Qwen2.5-0.5B-Instruct bash examples/verl/smoke_gpu.sh
#   bash examples/verl/smoke_gpu.sh --dry-run   # CPU: compose and check the run's verl config; no data, no Ray
# The last line is the verdict: "verl smoke: PASS (...)" or "verl smoke: FAIL (...)" ("verl smoke (dry run): ..."
# for --dry-run); the exit code follows it (0 on PASS).
# PASS needs the run to finish within SMOKE_SECONDS (600) and its log to show v05/prior/mean (the prior reached
# the estimator), v05/rollouts/top_up_rollouts > 0 and v05/rollouts/per_prompt > 2 (top-ups merged).
set -uo pipefail
MODEL=${MODEL:-Qwen/Qwen2.5-0.5B-Instruct}
PYTHON=${PYTHON:-python}
HERE=$(cd "$(dirname "$0")" && pwd)
WORK=${WORK:-/tmp/v05_verl_smoke}
SHARED=${SHARED:-$HERE/../../../shared/data}
SMOKE_SECONDS=${SMOKE_SECONDS:-600}
DRY_RUN=0
for arg in "$@"; do
    case $arg in
        --dry-run) DRY_RUN=1 ;;
        *) echo "verl smoke: FAIL (unknown argument $arg; the only option is --dry-run)"; exit 2 ;;
    esac
done
START=$SECONDS

OVERRIDES=(
    data.train_files="$WORK/train.parquet" data.val_files="$WORK/val.parquet"
    data.train_batch_size=16 data.max_prompt_length=512 data.max_response_length=512
    actor_rollout_ref.model.path="$MODEL" actor_rollout_ref.rollout.name=vllm
    actor_rollout_ref.rollout.n=2 actor_rollout_ref.rollout.gpu_memory_utilization=0.4
    actor_rollout_ref.actor.ppo_mini_batch_size=8 actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu=4
    actor_rollout_ref.rollout.log_prob_micro_batch_size_per_gpu=4
    algorithm.adv_estimator=v05 algorithm.use_kl_in_reward=false actor_rollout_ref.actor.use_kl_loss=false
    reward.custom_reward_function.path="$HERE/reward.py"
    trainer.v1.trainer_mode=v05_sync
    trainer.v1.sampler.custom_sampler.path=pkg://v05.integrations.verl.sampler
    trainer.v1.sampler.custom_sampler.name=V05ReplayBuffer
    +v05.rollouts.mode=osla +v05.rollouts.osla.k_init=2 +v05.rollouts.osla.k_max=6 +v05.rollouts.osla.cost=0
    +v05.rollouts.osla.max_rounds=2
    trainer.nnodes=1 trainer.n_gpus_per_node=1 trainer.total_training_steps=3 trainer.val_before_train=false
    trainer.test_freq=-1 trainer.save_freq=-1 trainer.logger='[console]'
    trainer.project_name=v05_smoke trainer.experiment_name=smoke trainer.default_local_dir="$WORK/run"
)

if [ "$DRY_RUN" = 1 ]; then
    if out=$("$PYTHON" -m v05.integrations.verl.main --dry-run "${OVERRIDES[@]}" 2>&1); then
        line=$(echo "$out" | grep -m1 '^verl config OK')
        echo "verl smoke (dry run): PASS (config composed and checked, nothing started: ${line% (dry run*})"
        exit 0
    fi
    echo "verl smoke (dry run): FAIL ($(echo "$out" | grep -m1 'error:' || echo "$out" | tail -n 1))"
    exit 1
fi

mkdir -p "$WORK"
# 64 GSM8K prompts as "training" data (32 of them as validation); context: the v0_demo table.
"$PYTHON" - "$SHARED" "$WORK" <<'PY' || { echo "verl smoke: FAIL (could not read $SHARED/math_benchmarks)"; exit 1; }
import json, sys
shared, work = sys.argv[1], sys.argv[2]
with open(f"{work}/train.jsonl", "w") as f:
    for i, line in enumerate(open(f"{shared}/math_benchmarks/gsm8k_test.jsonl")):
        if i == 64:
            break
        row = json.loads(line)
        f.write(json.dumps({"problem": row["question"], "answer": row["answer"].split("####")[-1].strip(), "id": i}) + "\n")
PY
HF_HUB_OFFLINE=1 "$PYTHON" "$HERE/prepare_data.py" --train "$WORK/train.jsonl" --out "$WORK" \
    --context "$SHARED/v0_demo" --context-policy Qwen3-4B-Instruct@16 > "$WORK/prepare.log" 2>&1 \
    || { echo "verl smoke: FAIL (prepare_data.py failed; see $WORK/prepare.log)"; exit 1; }
"$PYTHON" -c "import pandas as pd; d = pd.read_parquet('$WORK/train.parquet'); d.head(32).to_parquet('$WORK/val.parquet')"

LEFT=$((SMOKE_SECONDS - (SECONDS - START)))
[ "$LEFT" -gt 0 ] || { echo "verl smoke: FAIL (data preparation took the whole $SMOKE_SECONDS s)"; exit 1; }
timeout "$LEFT" "$PYTHON" -m v05.integrations.verl.main "${OVERRIDES[@]}" > "$WORK/train.log" 2>&1
STATUS=$?

"$PYTHON" - "$WORK/train.log" "$STATUS" "$((SECONDS - START))" "$SMOKE_SECONDS" <<'PY'
import re, sys
path, status, elapsed, limit = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
log = open(path).read()
def values(name):
    return [float(v) for v in re.findall(rf"{re.escape(name)}:(-?[0-9.eE+-]+)", log)]
prior, top_ups, per_prompt = values("v05/prior/mean"), values("v05/rollouts/top_up_rollouts"), values("v05/rollouts/per_prompt")
if status == 124:
    problem = f"not finished within {limit} s"
elif status != 0:
    errors = [line for line in log.splitlines() if "Error" in line or "error:" in line]
    problem = f"exit code {status}: {errors[-1].strip()[:200] if errors else 'see the log'}"
elif not prior:
    problem = "v05/prior/mean never logged: the prior did not reach the estimator"
elif not top_ups or max(top_ups) <= 0:
    problem = "no top-up rollouts: OSLA never asked for more (cost=0 should)"
elif not per_prompt or max(per_prompt) <= 2:
    problem = "groups did not grow past k_init: top-ups were not merged"
else:
    print(f"verl smoke: PASS ({elapsed} s; prior mean {prior[-1]:.3f}, top-up rollouts {top_ups}, rollouts per prompt "
          f"{per_prompt})")
    sys.exit(0)
print(f"verl smoke: FAIL ({problem}; log {path})")
sys.exit(1)
PY
