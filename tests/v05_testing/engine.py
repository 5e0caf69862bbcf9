"""Settings of a tiny RL run shared by the engine tests."""

TINY = dict(n_train_prompts=48, n_eval_prompts=32, prompts_per_step=8, d_embed=8, d_hidden=32, warmup_steps=30,
            warmup_batch=32, eval_every_rollouts=100, total_rollouts=240, eval_samples=2, context_size=32)
"""A run of a few seconds: enough steps to exercise every code path."""
