"""Small synthetic pass-rate tables: arithmetic prompts (the engine's task) and topic prompts whose
difficulty is readable from the text (the value model's tests)."""

import numpy as np
from scipy.special import expit

from v05.data import PassRateTable
from v05.rl.task import make_problems

TOPICS = ["algebra", "geometry", "counting", "number theory", "calculus", "probability"]


def topic_table(n_policies=4, n_prompts=60, n_samples=16, seed=0) -> PassRateTable:
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


def arithmetic_table() -> PassRateTable:
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
