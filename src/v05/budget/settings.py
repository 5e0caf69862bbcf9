"""Top-up settings as a trainer that owns generation runs them (TRL's ``V05Config``, verl's
``+v05.rollouts``): the rollout rule by name (OSLA by default, ``docs/method.md`` 10), and an optional cap on a
step's rollouts.

Three quantities are called a "budget" elsewhere; each has its own name here and in every trainer:

- ``total_rollouts`` (the CPU engine): the run's length in rollouts;
- ``budget_per_prompt`` (TRL, verl): a step's rollout cap, as a mean per prompt;
- ``RolloutPlan(budget=...)``: that cap in rollouts, for one batch (``step_budget`` converts).

Examples
--------
>>> TopUpSettings(budget_per_prompt=6).step_budget(n_prompts=32)
192
>>> TopUpSettings(rule="knapsack", rule_options={"k_max": 16}).plan_rule(first_round=4, first_name="num_generations")
Knapsack(k_min=4, k_max=16, k_per_prompt=8, alpha=0.9, fallback=True, k_init=4, max_rounds=None)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from v05._validation import check_number
from v05.budget.plan import Allocation
from v05.budget.reinforce_ada import ReinforceAda
from v05.budget.rule import OslaConfig
from v05.budget.rule_base import RolloutRule
from v05.budget.rules import check_rule_options, make_rule, rule_names

FIRST_ROUND = {"reinforce_ada": "round_size", "knapsack": "k_init", "cures": "k_init", "dynamic": "k"}
"""The option of each rule (other than OSLA, whose ``k_init`` the trainer sets) that fixes its first round."""


@dataclass(frozen=True)
class TopUpSettings:
    """The rollout rule, OSLA's settings and a per-step rollout cap (checked when built)."""

    osla: OslaConfig = field(default_factory=OslaConfig)
    """The OSLA rule (``v05.budget.OslaConfig``: k_init, k_max, cost, variance, per_round, rule, max_rounds),
    read when rule is 'osla'."""
    budget_per_prompt: float | None = None
    """A step's rollout budget as a mean per prompt, first round included: a step draws at most
    floor(budget_per_prompt x its prompts) rollouts, the top-ups going to the largest expected gains first.
    At least k_init; None: only k_max caps."""
    rule: str = "osla"
    """The rollout rule deciding the top-ups: 'osla' (V0.5's, set by the osla settings), 'reinforce_ada',
    'knapsack', 'cures' or 'dynamic' (docs/method.md 10; their options in rule_options)."""
    rule_options: dict = field(default_factory=dict)
    """The rule's options (e.g. {"k_max": 16}; v05.budget.rule_options(name) lists them); empty under 'osla'."""

    def __post_init__(self):
        if not isinstance(self.osla, OslaConfig):
            raise TypeError(f"osla must be an OslaConfig; got {type(self.osla).__name__}")
        check_rule_choice(self.rule, self.rule_options)
        if self.budget_per_prompt is not None:
            check_number(self.budget_per_prompt, "budget_per_prompt", minimum=self.osla.k_init if self.rule == "osla"
                         else 1)

    def plan_rule(self, first_round: int | None = None, first_name: str = "the first round") -> OslaConfig | RolloutRule:
        """What :class:`v05.budget.RolloutPlan` runs: ``osla`` (the plan is then exactly the OSLA one) or the
        rule built from ``rule_options`` (see :func:`build_rule`)."""
        return build_rule(self.rule, self.rule_options, self.osla, first_round, first_name)

    def step_budget(self, n_prompts: int) -> int | None:
        """The cap in rollouts for a step of ``n_prompts`` prompts (``RolloutPlan``'s ``budget``), or None."""
        if self.budget_per_prompt is None:
            return None
        return math.floor(self.budget_per_prompt * n_prompts + 1e-9)  # 1e-9: a ratio that is an int times n


def check_rule_choice(rule, options, rule_key: str = "rule", options_key: str = "rule_options") -> None:
    """A rule name and its options, checked by name (``v05.budget.check_rule_options``); OSLA takes none here,
    its settings having their own place in every trainer. Errors name the trainer's keys."""
    if not isinstance(rule, str) or rule not in rule_names():
        raise ValueError(f"{rule_key} == {rule!r}; known rollout rules: {', '.join(rule_names())}")
    if rule == "osla" and options:
        raise ValueError(f"{rule_key} 'osla' takes no {options_key} ({options!r}): set OSLA through its own settings "
                         "(k_max, cost, ...)")
    try:
        check_rule_options(rule, options)
    except (TypeError, ValueError) as e:
        raise type(e)(f"{options_key}: {e}") from None


def build_rule(rule: str, options, osla: OslaConfig, first_round: int | None = None,
               first_name: str = "the first round") -> OslaConfig | RolloutRule:
    """``osla`` itself under rule 'osla' (the plan is then bit-identical to an OSLA-only one), else the rule
    ``make_rule(rule, options)``. With ``first_round`` (a trainer that generates the first round itself, e.g.
    TRL's ``num_generations``), the rule's first-round option (:data:`FIRST_ROUND`) defaults to it and must
    equal it; Knapsack's and CurES's ``k_min`` then default to at least it.

    >>> build_rule("dynamic", {"k": 8}, OslaConfig(), first_round=4, first_name="num_generations")
    Traceback (most recent call last):
    ...
    ValueError: rollout rule dynamic: k == 8 but its first round is num_generations (4): leave k unset or set it to 4
    """
    check_rule_choice(rule, options)
    if rule == "osla":
        return osla
    options = dict(options or {})
    if first_round is not None:
        key = FIRST_ROUND[rule]
        if options.setdefault(key, first_round) != first_round:
            raise ValueError(f"rollout rule {rule}: {key} == {options[key]} but its first round is {first_name} "
                             f"({first_round}): leave {key} unset or set it to {first_round}")
        if key == "k_init" and "k_min" not in options:
            options["k_min"] = max(first_round, make_rule(rule).k_min)
    return make_rule(rule, options)


def update_rows(rule: OslaConfig | RolloutRule, pool: Allocation, scale="binary") -> np.ndarray | None:
    """(N,) True for the rollouts of a step's ``pool`` (a plan's :class:`~v05.budget.Allocation`) that enter the
    loss under ``rule`` (a built one), or None when all of them do. Only Reinforce-Ada keeps fewer: its ``n``
    a prompt (``ReinforceAda.update_rows``, ``docs/method.md`` 10.1); the estimator still runs on the whole pool.
    Every trainer calls this, so the engine, TRL and verl train on the same rows."""
    return rule.update_rows(pool, scale) if isinstance(rule, ReinforceAda) else None


def smallest_first_round(rule: OslaConfig | RolloutRule) -> int:
    """The fewest rollouts a prompt gets in a plan's first round under ``rule`` (a built one), e.g. for an
    estimator's dry run: OSLA's ``k_init``, the rule's first-round option, or ``k_min`` for a split planned in
    one round."""
    if isinstance(rule, OslaConfig):
        return rule.k_init
    first = getattr(rule, FIRST_ROUND[rule.name])
    return rule.k_min if first is None else first
