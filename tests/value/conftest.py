"""Shared fixtures: a small synthetic pass-rate table whose difficulty is readable from the prompt text."""

import numpy as np
import pytest
from scipy.special import expit

from tests.rl.conftest import tiny_value_model  # noqa: F401  (the prior tests use the engine's small model)
from v05.data import PassRateTable

TOPICS = ["algebra", "geometry", "counting", "number theory", "calculus", "probability"]


def synthetic_table(n_policies=4, n_prompts=60, n_samples=16, seed=0) -> PassRateTable:
    """Policies of rising ability; prompt ``i`` is harder the more times it says 'hard'."""
    rng = np.random.default_rng(seed)
    hardness = rng.integers(0, 5, n_prompts)
    texts = [f"{TOPICS[i % len(TOPICS)]} problem {i}: " + "hard " * h + "solve it" for i, h in enumerate(hardness)]
    rows = {k: [] for k in ("prompt_id", "policy", "pass_rate", "n_samples", "prompt")}
    for j in range(n_policies):
        ability = -0.5 + 0.6 * j
        for i, text in enumerate(texts):
            p_true = expit(ability + 2.0 - 1.0 * hardness[i] + rng.normal(0, 0.3))
            rows["prompt_id"].append(f"q{i}")
            rows["policy"].append(f"pol{j}")
            rows["pass_rate"].append(rng.binomial(n_samples, p_true) / n_samples)
            rows["n_samples"].append(n_samples)
            rows["prompt"].append(text)
    return PassRateTable.from_columns(**rows)


@pytest.fixture(scope="session")
def table():
    return synthetic_table()


@pytest.fixture(scope="session")
def fitted(table):
    from v05.value import ValueModel

    return ValueModel(encoder="hashing-64", cache_dir=False, n_pairs=2000).fit(table)


