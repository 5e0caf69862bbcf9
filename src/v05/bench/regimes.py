"""``v05 bench rl-regimes``: a regime map of training gains at equal rollouts (issue 11, item 2).

Every (group size k, prompt stream, difficulty mix) condition trains each method on the same seeds; a seed
fixes the prompt order and the sampling generator, and all seeds of a condition share its warm-up. The score
of a run is the exact mean pass rate of its final policy on the 256 held-out prompts (teacher forcing,
:mod:`v05.rl.exact`: no sampling noise in the score). Each method is compared with GRPO at the same
condition and seed: mean paired difference and its 95% t-interval over seeds.

The conditions (fixed before any result was seen; docs/rl.md, "Regime map"):

- k = 2, 4 (OSLA: k_init = k, k_max = 4k);
- ``recurring``: a pool of 1024 prompts read in epochs (the demo) vs ``fresh``: 5120 prompts, each read once
  (``task.stream = "fresh"``; no prompt has an outcome history: the value model sees its text and the
  policy's recent context only);
- ``spread``: the demo's warm-up on chains of 2-8 terms vs ``u-shaped``: a warm-up on chains of at most 4
  terms (``warmup.max_terms = 4``), which learns short chains and not long ones, so most pass rates sit near
  0 or 1 (the report gives the share within 0.1 of either end);
- methods: GRPO, RLOO, V0.5 (``v05`` with the value-model prior), V0.5 with the oracle prior (the exact pass
  rate, ``prior.source = "exact"``), V0.5 + OSLA (value-model prior).

Two later method sets (:data:`PRESETS`, fixed before their runs: docs/rl.md, "Regime map: value-free priors
and every rollout rule"): ``value-free`` (the value model's prior against a prompt's own history, a batch-only
prior and the calibrated fusion) and ``rules`` (every adaptive rollout rule at equal rollouts, with the
generation rounds each run spent). A rule's sizes follow the condition's k (:func:`sizes`).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from v05._validation import check_positive_int
from v05.stats import mean_interval as paired_interval
from v05.bench.workers import run_in_workers

METHODS = {
    "GRPO": {"method.estimator": "grpo"},
    "RLOO": {"method.estimator": "rloo"},
    "V0.5": {"method.estimator": "v05"},
    "V0.5 oracle prior": {"method.estimator": "v05", "prior.source": "exact"},
    "V0.5 + OSLA": {"method.estimator": "v05", "method.allocation": "osla"},
    "Dr. GRPO": {"method.estimator": "dr_grpo"},
    "V0.5 leave-one-out": {"method.estimator": "v05_eb_loo"},
    # value-free priors (issue 18)
    "V0.5 history prior": {"method.estimator": "v05", "prior.source": "history"},
    "EB batch": {"method.estimator": "eb_batch", "prior.source": "none"},
    "V0.5 calibrated": {"method.estimator": "v05_eb_reg"},
    # every rollout rule, V0.5's estimator (value-model prior) unless the allocation forbids a prior (issue 19)
    "OSLA 2 rounds": {"method.estimator": "v05", "method.allocation": "osla", "osla.max_rounds": 2},
    "OSLA eb": {"method.estimator": "v05", "method.allocation": "osla", "osla.rule": "eb", "osla.max_rounds": 2},
    "Reinforce-Ada": {"method.estimator": "v05", "method.allocation": "osla", "method.rollout_rule": "reinforce_ada"},
    "Knapsack": {"method.estimator": "v05", "method.allocation": "osla", "method.rollout_rule": "knapsack"},
    "CurES": {"method.estimator": "v05", "method.allocation": "osla", "method.rollout_rule": "cures"},
    "Dynamic sampling": {"method.estimator": "v05", "method.allocation": "osla", "method.rollout_rule": "dynamic"},
    "DAPO dynamic": {"method.estimator": "dapo", "prior.source": "none", "method.allocation": "dynamic"},
}
"""The methods a map can compare (settings on top of the condition's and :func:`sizes`'); GRPO is the reference."""
REGISTERED = ("GRPO", "RLOO", "V0.5", "V0.5 oracle prior", "V0.5 + OSLA")
"""The map's default methods, fixed before its first run; the others of ``METHODS`` were run afterwards."""
PRESETS = {
    "registered": REGISTERED,
    "value-free": ("GRPO", "V0.5", "V0.5 history prior", "EB batch", "V0.5 calibrated"),
    "rules": ("GRPO", "V0.5", "V0.5 + OSLA", "OSLA 2 rounds", "OSLA eb", "Reinforce-Ada", "Knapsack", "CurES",
              "Dynamic sampling", "DAPO dynamic"),
}
"""Named method sets (``--methods value-free``), each fixed before its runs (docs/rl.md)."""
STREAM_ONLY = {"DAPO dynamic": "recurring"}
"""Methods run on one prompt stream only: DAPO's dynamic sampling replaces a dropped group by a new prompt's, so
on the fresh stream at k = 2 it would read more prompts than the pool holds, and a larger pool would change the
warm-up (which excludes the pool) and break the pairing with GRPO."""
REFERENCE = "GRPO"
FIXED_V05 = "V0.5"
"""The second reference: V0.5's estimator at fixed k (a rule's difference to it is its allocation's alone)."""
STREAMS = {"recurring": "epochs", "fresh": "fresh"}
DIFFICULTIES = {"spread": 8, "u-shaped": 4}
"""Difficulty mix -> the warm-up's longest chain (``warmup.max_terms``)."""


@dataclass(frozen=True)
class RegimeSettings:
    """Sizes of the regime map (defaults: 120 runs, about 15 CPU-minutes; docs/rl.md)."""

    group_sizes: tuple[int, ...] = (2, 4)
    streams: tuple[str, ...] = ("recurring", "fresh")
    difficulties: tuple[str, ...] = ("spread", "u-shaped")
    methods: tuple[str, ...] = REGISTERED
    seeds: tuple[int, ...] = (0, 1, 2)
    total_rollouts: int = 10240
    """Rollouts of every run (a quarter of the demo's)."""
    recurring_prompts: int = 1024
    """Pool of the recurring stream (the demo's)."""
    fresh_prompts: int = 5120
    """Pool of the fresh stream (every prompt a k = 2 run reads, each once)."""
    workers: int = 2
    value_model: str = "default"
    extra: tuple[tuple[str, object], ...] = ()
    """Further settings applied to every run (tests use them to shrink the runs)."""

    def __post_init__(self):
        for name, allowed in (("streams", STREAMS), ("difficulties", DIFFICULTIES), ("methods", METHODS)):
            for value in getattr(self, name):
                if value not in allowed:
                    raise ValueError(f"{name}: {value!r} is not one of {sorted(allowed)}")
        if REFERENCE not in self.methods:
            raise ValueError(f"methods must include {REFERENCE!r}: every difference is taken to it")
        for k in self.group_sizes:
            check_positive_int(k, "group size", minimum=2)
        for name in ("total_rollouts", "recurring_prompts", "fresh_prompts", "workers"):
            check_positive_int(getattr(self, name), name)

    def conditions(self) -> list[tuple[int, str, str]]:
        """(k, stream, difficulty) of every condition."""
        return [(k, s, d) for k in self.group_sizes for s in self.streams for d in self.difficulties]

    def config(self, condition: tuple[int, str, str], method: str, seed: int):
        """The checked TrainConfig of one run."""
        from v05.rl.config import TrainConfig

        k, stream, difficulty = condition
        settings = {"total_rollouts": self.total_rollouts, "eval.every_rollouts": self.total_rollouts, "threads": 1,
                    "seed": seed, "prior.value_model": self.value_model, "task.stream": STREAMS[stream],
                    "task.n_train": self.recurring_prompts if stream == "recurring" else self.fresh_prompts,
                    "warmup.max_terms": DIFFICULTIES[difficulty], **sizes(METHODS[method], k), **METHODS[method],
                    **dict(self.extra)}
        return TrainConfig().with_settings(settings)

    def jobs(self) -> list[tuple[tuple[int, str, str], str, int]]:
        """(condition, method, seed) of every run."""
        return [(c, m, s) for c in self.conditions() for m in self.methods for s in self.seeds
                if STREAM_ONLY.get(m, c[1]) == c[1]]


def sizes(method: dict, k: int) -> dict:
    """A method's rollouts per prompt at the condition's group size k: k for fixed groups and dynamic sampling;
    every adaptive rule starts each prompt at k (Knapsack and CurES: at least k, their split planned from the
    prior in one round) and gives none more than 4k; Knapsack and CurES split 2k a prompt on average, the
    others stop by their own rule (Reinforce-Ada keeps k a prompt for the update; it and the dynamic rule
    draw at most 3 top-up rounds, their defaults). OSLA is uncapped in rounds, as registered before the
    default cap of 2 (a method may set ``osla.max_rounds``)."""
    if method.get("method.allocation") != "osla":
        return {"method.group_size": k}
    rule = method.get("method.rollout_rule", "osla")
    options = {"osla": None,
               "reinforce_ada": {"round_size": k, "n": k, "k_max": 4 * k, "max_rounds": 3},
               "knapsack": {"k_min": k, "k_max": 4 * k, "k_per_prompt": 2 * k},
               "cures": {"k_min": k, "k_max": 4 * k, "k_per_prompt": 2 * k},
               "dynamic": {"k": k, "k_max": 4 * k, "max_rounds": 3}}[rule]
    if options is None:
        return {"osla.k_init": k, "osla.k_max": 4 * k, "osla.max_rounds": None}
    return {"method.rollout_rule_options": options}


def run_name(condition, method: str, seed: int) -> str:
    k, stream, difficulty = condition
    return f"k{k}_{stream}_{difficulty}_{method.replace(' ', '_').replace('+', 'plus')}_seed{seed}"


def held_out_pass_rate(cfg, weights: dict) -> tuple[float, np.ndarray]:
    """Mean exact pass rate of a policy with ``weights`` on the held-out set, and the per-prompt rates."""
    from v05.rl.exact import exact_pass_rates
    from v05.rl.policy import Policy
    from v05.rl.task import ArithmeticTask

    task = ArithmeticTask.build(cfg.task.n_train, cfg.task.n_eval, cfg.task.seed)
    policy = Policy(cfg.policy)
    policy.load_state_dict(weights)
    rates = exact_pass_rates(policy, [p.prompt for p in task.eval], [p.answer for p in task.eval], cfg.temperature)
    return float(rates.mean()), rates


def _run_one(args) -> dict:
    """Worker: train one run and score its final policy (top-level, picklable)."""
    from v05.rl.checkpoint import load_checkpoint
    from v05.rl.loop import train

    condition, method, seed, cfg, run_dir, cache, messages = args
    result = train(cfg, run_dir, warmup_cache=cache, tensorboard=False,
                   on_record=lambda r: messages.put((r["rollouts"],)))
    rounds = [r["budget/rounds"] for r in result.records if "budget/rounds" in r]  # step 0: the first evaluation
    tensors = load_checkpoint(run_dir).tensors
    score, _ = held_out_pass_rate(cfg, {k[len("policy."):]: v for k, v in tensors.items() if k.startswith("policy.")})
    messages.put((None,))  # this run is done
    return {"condition": list(condition), "method": method, "seed": seed, "held_out": score,
            "rollouts": result.rollouts, "sampled_accuracy": result.final_accuracy,
            "steps": len(rounds), "rounds": int(sum(rounds))}


def prepare_warmups(settings: RegimeSettings, cache: Path) -> dict[str, dict]:
    """Compute every condition's warm-up once (before the workers start) and describe its starting point:
    held-out pass rate and the share of training-pool prompts with a pass rate within 0.1 of 0 or 1."""
    from v05.rl.exact import exact_pass_rates
    from v05.rl.policy import Policy
    from v05.rl.setup import warm_start
    from v05.rl.task import ArithmeticTask
    from v05.value import ValueModel

    model = ValueModel.load(settings.value_model)
    start = {}
    for condition in settings.conditions():
        cfg = settings.config(condition, REFERENCE, settings.seeds[0])
        task = ArithmeticTask.build(cfg.task.n_train, cfg.task.n_eval, cfg.task.seed)
        model.text_difficulty([p.prompt for p in task.train + task.eval])
        weights = warm_start(cfg, task, cache)
        policy = Policy(cfg.policy)
        policy.load_state_dict(weights)
        pool = exact_pass_rates(policy, [p.prompt for p in task.train], [p.answer for p in task.train])
        start[json.dumps(list(condition))] = {
            "held_out": held_out_pass_rate(cfg, weights)[0], "pool_mean": float(pool.mean()),
            "pool_extreme_share": float(np.mean((pool < 0.1) | (pool > 0.9))),
            "pool_histogram": np.histogram(pool, bins=10, range=(0, 1))[0].tolist()}
    return start


def run(settings: RegimeSettings, out, *, progress=None) -> dict:
    """Train every run (``settings.workers`` in parallel), then summarise; returns the report.

    ``progress(rollouts)`` is called as a run records, ``progress(None)`` when a run finishes.
    """
    out = Path(out)
    cache = out / "warmup"
    start = prepare_warmups(settings, cache)
    jobs = settings.jobs()
    runs = run_in_workers(_run_one, [(c, m, s, settings.config(c, m, s), out / "runs" / run_name(c, m, s), cache)
                                     for c, m, s in jobs], settings.workers, progress)
    return {"settings": {**asdict(settings), "methods_settings": {m: METHODS[m] for m in settings.methods}},
            "start": start, "runs": runs, "cells": summarise(runs)}



def combine(reports: list[dict]) -> dict:
    """One report from parts of a map run separately (e.g. ``--difficulties spread``, then ``u-shaped``): the same
    settings but for the conditions, which must not overlap; the cells are summarised again over every run."""
    def rest(report):
        return {k: v for k, v in report["settings"].items() if k not in ("group_sizes", "streams", "difficulties")}

    first = reports[0]
    if any(rest(r) != rest(first) for r in reports[1:]):
        raise ValueError("combine: the reports differ in more than their conditions (methods, seeds, rollouts...)")
    starts = [key for r in reports for key in r["start"]]
    if len(set(starts)) != len(starts):
        raise ValueError("combine: a condition is in more than one report")
    settings = {**first["settings"], **{k: list(dict.fromkeys(x for r in reports for x in r["settings"][k]))
                                        for k in ("group_sizes", "streams", "difficulties")}}
    start = {key: r["start"][key] for r in reports for key in r["start"]}
    order = [json.dumps([k, s, d]) for k in settings["group_sizes"] for s in settings["streams"]
             for d in settings["difficulties"]]
    runs = sorted((run for r in reports for run in r["runs"]), key=lambda run: order.index(json.dumps(run["condition"])))
    return {"settings": settings, "start": {key: start[key] for key in order if key in start}, "runs": runs,
            "cells": summarise(runs)}


def summarise(runs: list[dict]) -> list[dict]:
    """One cell per (condition, method): mean held-out pass rate, the paired difference to GRPO and (when V0.5
    ran) to V0.5 at fixed k, and the generation rounds: mean per step and total per run."""
    by = {(tuple(r["condition"]), r["method"], r["seed"]): r for r in runs}
    cells = []
    for condition, method in dict.fromkeys((tuple(r["condition"]), r["method"]) for r in runs):
        seeds = sorted(s for c, m, s in by if c == condition and m == method)
        values = np.array([by[condition, method, s]["held_out"] for s in seeds])
        cell = {"condition": list(condition), "method": method, "seeds": seeds, "held_out": float(values.mean()),
                "held_out_sd": float(values.std(ddof=1)) if len(values) > 1 else float("nan")}
        for name, ref in (("grpo", REFERENCE), ("v05", FIXED_V05)):
            if all((condition, ref, s) in by for s in seeds):
                mean, lo, hi = paired_interval(values - np.array([by[condition, ref, s]["held_out"] for s in seeds]))
                cell |= {f"diff_to_{name}": mean, f"ci_low_{name}": lo, f"ci_high_{name}": hi}
        cell["ci_low"], cell["ci_high"] = cell.pop("ci_low_grpo"), cell.pop("ci_high_grpo")
        runs_here = [by[condition, method, s] for s in seeds]
        if all("rounds" in r for r in runs_here):  # reports written before rounds were recorded have none
            cell |= {"rounds_per_step": float(np.mean([r["rounds"] / r["steps"] for r in runs_here])),
                     "rounds": float(np.mean([r["rounds"] for r in runs_here])),
                     "steps": float(np.mean([r["steps"] for r in runs_here]))}
        cells.append(cell)
    return cells
