#!/usr/bin/env bash
# The V0.5 paper's setting on verl 0.9.1 (NOT RUN HERE: written and checked for config errors on CPU only).
# Qwen3-4B-Instruct-2507, DAPO-Math-style prompts, k_init 4 + OSLA up to 16, vLLM rollouts, FSDP,
# 4 nodes x 8 GPUs (NNODES=1 for a single 8-GPU node). Data: examples/verl/prepare_data.py.
# Usage: DATA=data/v05 MODEL=Qwen/Qwen3-4B-Instruct-2507 NNODES=4 bash examples/verl/run_paper.sh [overrides]
set -euo pipefail
DATA=${DATA:-data/v05}
MODEL=${MODEL:-Qwen/Qwen3-4B-Instruct-2507}
NNODES=${NNODES:-4}
HERE=$(cd "$(dirname "$0")" && pwd)

python -m v05.integrations.verl.main \
    data.train_files="$DATA/train.parquet" data.val_files="$DATA/val.parquet" \
    data.train_batch_size=512 data.max_prompt_length=1024 data.max_response_length=8192 \
    actor_rollout_ref.model.path="$MODEL" \
    actor_rollout_ref.rollout.name=vllm actor_rollout_ref.rollout.n=4 \
    actor_rollout_ref.rollout.gpu_memory_utilization=0.7 actor_rollout_ref.rollout.tensor_model_parallel_size=1 \
    actor_rollout_ref.rollout.val_kwargs.n=16 actor_rollout_ref.rollout.val_kwargs.do_sample=true \
    actor_rollout_ref.rollout.val_kwargs.temperature=1.0 \
    actor_rollout_ref.actor.ppo_mini_batch_size=128 actor_rollout_ref.actor.optim.lr=1e-6 \
    actor_rollout_ref.actor.use_kl_loss=false actor_rollout_ref.actor.loss_agg_mode=token-mean \
    actor_rollout_ref.actor.clip_ratio_low=0.2 actor_rollout_ref.actor.clip_ratio_high=0.28 \
    actor_rollout_ref.actor.use_dynamic_bsz=true actor_rollout_ref.actor.ppo_max_token_len_per_gpu=24576 \
    actor_rollout_ref.model.enable_gradient_checkpointing=true \
    algorithm.adv_estimator=v05 algorithm.use_kl_in_reward=false \
    reward.custom_reward_function.path="$HERE/reward.py" reward.custom_reward_function.name=compute_score \
    trainer.v1.trainer_mode=v05_sync \
    trainer.v1.sampler.custom_sampler.path=pkg://v05.integrations.verl.sampler \
    trainer.v1.sampler.custom_sampler.name=V05ReplayBuffer \
    +v05.rollouts.mode=osla +v05.rollouts.osla.k_init=4 +v05.rollouts.osla.k_max=16 \
    +v05.rollouts.osla.cost=0.0039 +v05.rollouts.osla.max_rounds=3 \
    trainer.nnodes="$NNODES" trainer.n_gpus_per_node=8 trainer.total_epochs=10 \
    trainer.test_freq=20 trainer.save_freq=50 trainer.logger='[console,wandb]' \
    trainer.project_name=v05 trainer.experiment_name=v05_osla_qwen3_4b "$@"
