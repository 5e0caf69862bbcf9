"""Settings of a tiny RL run shared by the engine tests."""

from v05.rl.config import TrainConfig

TINY = {"task.n_train": 48, "task.n_eval": 32, "method.prompts_per_step": 8, "policy.d_embed": 8, "policy.d_hidden": 32,
        "warmup.steps": 30, "warmup.batch": 32, "eval.every_rollouts": 100, "total_rollouts": 240, "eval.samples": 2,
        "prior.context_size": 32}
"""A run of a few seconds: enough steps to exercise every code path."""


def tiny(**settings) -> TrainConfig:
    """A TINY config with dotted settings changed (``tiny(**{"method.estimator": "grpo"})``)."""
    return TrainConfig().with_settings({**TINY, **settings})


def short_chain_policy():
    """A small policy warmed up briefly on chains of at most 3 terms, so that its pass rates spread over (0, 1)."""
    import numpy as np
    import torch

    from v05.rl.policy import Policy, PolicyConfig, supervised_warmup
    from v05.rl.task import encode_answers, encode_prompts, make_problems

    torch.manual_seed(3)
    pol = Policy(PolicyConfig(d_embed=8, d_hidden=32))
    data = make_problems(4096, np.random.default_rng(1), distinct=False, max_terms=3)
    supervised_warmup(pol, torch.from_numpy(encode_prompts([p.prompt for p in data])),
                      torch.from_numpy(encode_answers([p.answer for p in data])), steps=150, batch_size=64, lr=1e-2,
                      generator=torch.Generator().manual_seed(0))
    return pol
