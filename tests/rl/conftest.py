"""Tiny RL settings and a small real value model, shared by the engine tests."""

import numpy as np
import pytest

from v05.data import PassRateTable
from v05.value import ValueModel
from v05.rl.task import make_problems

TINY = dict(n_train_prompts=48, n_eval_prompts=32, prompts_per_step=8, d_embed=8, d_hidden=32, warmup_steps=30,
            warmup_batch=32, eval_every_rollouts=100, total_rollouts=240, eval_samples=2, context_size=32)
"""A run of a few seconds: enough steps to exercise every code path."""


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
