"""Tiny RL settings and a small real value model, shared by the engine tests."""

import numpy as np
import pytest

from v05.data import PassRateTable
from v05.rl.config import TrainConfig
from v05.rl.task import make_problems
from v05.value import ValueModel

TINY = {"task.n_train": 48, "task.n_eval": 32, "method.prompts_per_step": 8, "policy.d_embed": 8, "policy.d_hidden": 32,
        "warmup.steps": 30, "warmup.batch": 32, "eval.every_rollouts": 100, "total_rollouts": 240, "eval.samples": 2,
        "prior.context_size": 32}
"""A run of a few seconds: enough steps to exercise every code path."""


def tiny(**settings) -> TrainConfig:
    """A TINY config with dotted settings changed (``tiny(**{"method.estimator": "grpo"})``)."""
    return TrainConfig().with_settings({**TINY, **settings})


def synthetic_table() -> PassRateTable:
    """3 synthetic policies x 60 arithmetic prompts, pass rate falling with the number of terms."""
    problems = make_problems(60, np.random.default_rng(0))
    rows = {"prompt_id": [], "policy": [], "pass_rate": [], "prompt": [], "n_samples": []}
    for k, skill in enumerate((0.2, 0.5, 0.8)):
        for p in problems:
            rows["prompt_id"].append(p.prompt)
            rows["policy"].append(f"policy{k}")
            rows["pass_rate"].append(float(np.clip(skill + 0.3 - 0.08 * p.level, 0, 1)))
            rows["prompt"].append(p.prompt)
            rows["n_samples"].append(8)
    return PassRateTable.from_columns(**rows)


@pytest.fixture(scope="session")
def tiny_value_model():
    """A real value model (hashing encoder, no cache) meta-trained on :func:`synthetic_table`."""
    return ValueModel(encoder="hashing-64", cache_dir=False, n_pairs=500).fit(synthetic_table())
