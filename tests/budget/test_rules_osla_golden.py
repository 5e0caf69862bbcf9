"""OSLA through the rule registry plans exactly as the planner did before it: the plans of 200 seeded
scenarios (``data/osla_golden.json``, written by running this file as a script on the planner of commit
e20d8da) must come out the same, round by round, bit for bit."""

from __future__ import annotations

import json
import pathlib

import numpy as np
import pytest

from v05.baselines import Prior
from v05.budget import RolloutPlan


def scenario(seed: int) -> dict:
    """Settings of scenario ``seed``: prompts, priors, config, budget, block, round_multiple."""
    rng = np.random.default_rng(seed)
    m = int(rng.integers(1, 9))
    block = int(rng.choice([1, 1, 2, 4]))
    k_init = int(rng.integers(1, 5)) if block == 1 else block
    rule = str(rng.choice(["paper", "eb"]))
    if rule == "eb":
        k_init = max(k_init, 2) if block == 1 else k_init
    k_max = k_init + block * int(rng.integers(0, 6))
    config = {"k_init": k_init, "k_max": k_max, "cost": float(rng.choice([0.0039, 0.001, 0.02])),
              "variance": str(rng.choice(["worst", "bernoulli"])), "per_round": int(rng.integers(1, 3)), "rule": rule,
              "max_rounds": None if rng.random() < 0.5 else int(rng.integers(0, 4))}
    budget = None if rng.random() < 0.5 else int(m * k_init + rng.integers(0, 3 * m * block + 1))
    prior = np.round(rng.random(m), 3).tolist()
    var = None if rng.random() < 0.6 else np.round(rng.random(m) * 0.05, 4).tolist()
    truth = np.round(rng.random(m), 3).tolist()
    return {"seed": seed, "config": config, "budget": budget, "block": block,
            "round_multiple": int(rng.choice([1, 1, 3])), "prior": prior, "var": var, "truth": truth,
            "scale": str(rng.choice(["binary", "pm1"]))}


def run(s: dict, config=None) -> list:
    """Drive a plan for scenario ``s`` (rewards drawn from ``truth`` with the scenario's seed); the rounds it
    asked for, as ``[[index...], [n...]]`` per round, and the final counts last."""
    rng = np.random.default_rng(1000 + s["seed"])
    plan = RolloutPlan(Prior(s["prior"], s["var"]), s["config"] if config is None else config, s["budget"],
                       scale=s["scale"], block=s["block"], round_multiple=s["round_multiple"])
    out = []
    truth = np.asarray(s["truth"])
    while round_ := plan.request():
        out.append([round_.index.tolist(), round_.n.tolist()])
        idx = np.repeat(round_.index, round_.n)
        wins = rng.random(len(idx)) < truth[idx]
        rewards = wins.astype(float) if s["scale"] == "binary" else np.where(wins, 1.0, -1.0)
        if len(round_) > 1 and rng.random() < 0.2:  # forfeit one prompt's last rollout now and then
            j = int(round_.index[-1])
            keep = np.ones(len(idx), dtype=bool)
            keep[-1] = False
            plan.record(idx[keep], rewards[keep])
            plan.forfeit(j)
        else:
            plan.record(idx, rewards)
    out.append(plan.result().counts.tolist())
    return out


SEEDS = range(200)


GOLDEN_PATH = pathlib.Path(__file__).parent / "data" / "osla_golden.json"


@pytest.mark.parametrize("seed", SEEDS)
def test_osla_plans_match_the_stored_ones(seed):
    case = _golden()[seed]
    assert case["scenario"] == scenario(seed)
    assert run(case["scenario"]) == case["rounds"]


_CACHE: list = []


def _golden() -> list:
    if not _CACHE:
        _CACHE.extend(json.loads(GOLDEN_PATH.read_text()))
    return _CACHE


if __name__ == "__main__":  # writes the golden file (was run once, before the rule registry)
    golden = [{"scenario": scenario(seed), "rounds": run(scenario(seed))} for seed in SEEDS]
    path = GOLDEN_PATH
    path.write_text(json.dumps(golden, separators=(",", ":")) + "\n")
    print(f"wrote {len(golden)} scenarios to {path}")
