"""Settings of a tiny RL run shared by the engine tests."""

from v05.rl.config import TrainConfig

TINY = {"task.n_train": 48, "task.n_eval": 32, "method.prompts_per_step": 8, "policy.d_embed": 8, "policy.d_hidden": 32,
        "warmup.steps": 30, "warmup.batch": 32, "eval.every_rollouts": 100, "total_rollouts": 240, "eval.samples": 2,
        "prior.context_size": 32}
"""A run of a few seconds: enough steps to exercise every code path."""


def tiny(**settings) -> TrainConfig:
    """A TINY config with dotted settings changed (``tiny(**{"method.estimator": "grpo"})``)."""
    return TrainConfig().with_settings({**TINY, **settings})
