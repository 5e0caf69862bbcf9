"""Every rollout rule at equal compute, inside the baseline-MSE benchmark (``v05 bench baseline --rules``).

Each rule of :mod:`v05.budget.rules` runs through the same :class:`v05.budget.RolloutPlan` on every batch of M
prompts with

- the same budget, ``budget_per_prompt x M`` rollouts, first round included (``RolloutPlan(budget=)``:
  OSLA, Reinforce-Ada and dynamic sampling stop at it or before; Knapsack RL and CurES split all of it);
- the same first round, ``k_init`` rollouts for every prompt, set as a trainer sets it
  (:func:`v05.budget.settings.build_rule`: the rule's first-round option); every other option at its default.

``fixed`` (not a rule) is the reference: ``budget_per_prompt`` rollouts for every prompt in one round.

Common random numbers: for each (seed, prior, batch) one table of Bernoulli rewards is drawn, reward j of
prompt i, and every rule (at every k_init) takes each prompt's rollouts from it in order; ``fixed`` takes the
first ``budget_per_prompt``. Per cell the benchmark records each estimator's MSE, the rollouts drawn, the
generation rounds and the share of groups that carry a gradient (:func:`mixed`: rewards not all equal).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from v05._validation import check_positive_int
from v05.budget import Allocation, OslaConfig, RolloutRule, allocate, rule_names
from v05.budget.dynamic import all_equal
from v05.budget.osla import OslaRule
from v05.budget.settings import build_rule
from v05.stats import ci95

FIXED = "fixed"
"""The reference allocation's name: ``budget_per_prompt`` rollouts for every prompt, one round."""
VARIANTS = {"osla": "rule", "reinforce_ada": "exit"}
"""The option a ``name:variant`` spec sets, per rule (``osla:eb`` is OSLA with ``rule="eb"``)."""
STREAM = 1000
"""Last entry of the seed of the common-random-number tables (other streams of the benchmark use 0 and 1)."""


@dataclass(frozen=True)
class RuleSpec:
    """One rule to run: its registered ``name`` and optionally the variant of :data:`VARIANTS` (``osla:eb``)."""

    name: str
    variant: str | None = None

    @property
    def label(self) -> str:
        return self.name if self.variant is None else f"{self.name}:{self.variant}"

    @classmethod
    def parse(cls, text: str) -> RuleSpec:
        """``name`` or ``name:variant``, checked (unknown names and variants raise ``ValueError`` listing the
        known ones)."""
        name, _, variant = text.strip().partition(":")
        if name not in rule_names():
            raise ValueError(f"unknown rollout rule {name!r}; known: {', '.join(rule_names())} (a variant as "
                             f"name:value for {', '.join(f'{n} ({o})' for n, o in VARIANTS.items())})")
        if variant and name not in VARIANTS:
            raise ValueError(f"rollout rule {name} has no variant (got {text.strip()!r}); variants exist for "
                             f"{', '.join(VARIANTS)}")
        return cls(name, variant or None)

    def build(self, k_init: int) -> OslaConfig | RolloutRule:
        """The rule with its first round at ``k_init``, its variant, every other option at its default."""
        if self.name == "osla":
            return OslaConfig(k_init=k_init, **({} if self.variant is None else {"rule": self.variant}))
        options = {} if self.variant is None else {VARIANTS[self.name]: self.variant}
        return build_rule(self.name, options, OslaConfig(), first_round=k_init, first_name="k_init")


@dataclass(frozen=True)
class RulesConfig:
    """The rules compared (``RuleSpec``s or their text, ``"osla:eb"``), the first rounds and the budget per
    prompt; checked when built (every rule is built at every k_init), and against a batch size by :meth:`check`."""

    specs: tuple[RuleSpec, ...]
    k_inits: tuple[int, ...] = (4,)
    budget_per_prompt: int = 8

    def __post_init__(self):
        if not self.specs:
            raise ValueError("rules is empty: give at least one rollout rule")
        specs = tuple(s if isinstance(s, RuleSpec) else RuleSpec.parse(s) for s in self.specs)
        labels = [s.label for s in specs]
        if len(set(labels)) != len(labels):
            raise ValueError(f"rules lists a rule twice: {labels}")
        object.__setattr__(self, "specs", specs)
        if not self.k_inits:
            raise ValueError("k_inits is empty: give at least one first round")
        for i, k in enumerate(self.k_inits):
            check_positive_int(k, f"k_inits[{i}]")
        if len(set(self.k_inits)) != len(self.k_inits):
            raise ValueError(f"k_inits lists a first round twice: {list(self.k_inits)}")
        check_positive_int(self.budget_per_prompt, "budget_per_prompt")
        self.check(1)

    def check(self, m: int) -> None:
        """Raise ``ValueError`` naming the rule and k_init if a plan of ``m`` prompts cannot start (e.g. a first
        round beyond the budget)."""
        for k in self.k_inits:
            for spec in self.specs:
                rule = self.rule(spec, k)
                try:
                    (OslaRule(rule) if isinstance(rule, OslaConfig) else rule).check_plan(
                        m, self.budget_per_prompt * m, 1)
                except ValueError as e:
                    raise ValueError(f"{spec.label} at k_init={k} with budget_per_prompt={self.budget_per_prompt}: "
                                     f"{e}") from None

    def rule(self, spec: RuleSpec, k_init: int) -> OslaConfig | RolloutRule:
        """``spec`` built at ``k_init``; an error names both."""
        try:
            return spec.build(k_init)
        except (ValueError, TypeError) as e:
            raise type(e)(f"{spec.label} at k_init={k_init}: {e}") from None

    def width(self) -> int:
        """Rewards per prompt in a common-random-number table: the largest k_max, or the fixed budget."""
        return max([self.budget_per_prompt] + [self.rule(s, k).k_max for s in self.specs for k in self.k_inits])

    def allocations(self, prior, p: np.ndarray, rng: np.random.Generator):
        """``(label, k_init, Allocation)`` of ``fixed`` (k_init None) and of every rule at every k_init, on one
        batch with true pass rates ``p``, all drawn from one table of rewards (common random numbers)."""
        rewards = (rng.random((len(p), self.width())) < p[:, None]).astype(np.float64)
        budget = self.budget_per_prompt * len(p)
        yield FIXED, None, fixed_allocation(rewards, self.budget_per_prompt)
        for k in self.k_inits:
            for spec in self.specs:
                yield spec.label, k, allocate(replay(rewards), prior, config=self.rule(spec, k), budget=budget)

    def as_dict(self) -> dict:
        return {"rules": [s.label for s in self.specs], "k_inits": list(self.k_inits),
                "budget_per_prompt": self.budget_per_prompt}


def fixed_allocation(rewards: np.ndarray, k: int) -> Allocation:
    """The first ``k`` rewards of every prompt of a (M, width) table, one round."""
    m = len(rewards)
    return Allocation(rewards=rewards[:, :k].ravel(), group=np.repeat(np.arange(m), k), round=np.zeros(m * k, dtype=int),
                      counts=np.full(m, k), rounds=1)


def replay(rewards: np.ndarray):
    """``generate(idx, n)`` handing out each prompt's next rewards from a (M, width) table, in order."""
    taken = np.zeros(len(rewards), dtype=np.int64)

    def generate(idx, n):
        out = np.concatenate([rewards[i, taken[i] : taken[i] + m] for i, m in zip(idx.tolist(), n.tolist())])
        taken[idx] += n
        return out

    return generate


def mixed(alloc: Allocation) -> np.ndarray:
    """(M,) True for the prompts whose rewards are not all equal: the groups that carry a gradient under a
    group-mean baseline (an all-equal group's advantages are all 0)."""
    return ~all_equal(alloc.rewards, alloc.group, len(alloc.counts))


class RuleCells:
    """Sums per cell (rule, k_init, prior) and estimator: pooled over seeds (the reported values) and per seed
    (the intervals). The allocation's own measures (rollouts, rounds, groups with a gradient) are per cell."""

    def __init__(self):
        self.cells: dict[tuple, dict] = {}

    def add(self, key: tuple, seed: int, alloc: Allocation, scores: dict[str, np.ndarray | None]) -> None:
        """One batch of the cell ``key``: its allocation and each estimator's per-prompt MSE (None: undefined)."""
        m = len(alloc.counts)
        for target in (self.cells.setdefault(key, {"pooled": _zero(), "seeds": {}})["pooled"],
                       self.cells[key]["seeds"].setdefault(seed, _zero())):
            target["prompts"] += m
            target["rollouts"] += float(alloc.counts.sum())
            target["rounds"] += alloc.rounds
            target["batches"] += 1
            target["mixed"] += int(mixed(alloc).sum())
            for name, per_prompt in scores.items():
                se = target["se"].setdefault(name, [0.0, 0, 0])
                if per_prompt is None:
                    se[2] += 1
                else:
                    se[0] += float(per_prompt.sum())
                    se[1] += len(per_prompt)

    def rows(self) -> list[dict]:
        """One row per cell and estimator scored at least once, with per-seed values and 95% intervals."""
        out = []
        for (rule, k_init, prior), cell in self.cells.items():
            pooled, seeds = cell["pooled"], list(cell["seeds"].values())
            for name, (se, n, undefined) in pooled["se"].items():
                if n == 0:
                    continue
                per_seed = {"mse": [x["se"][name][0] / x["se"][name][1] if x["se"][name][1] else float("nan")
                                    for x in seeds],
                            "mean_rollouts": [x["rollouts"] / x["prompts"] for x in seeds],
                            "rounds": [x["rounds"] / x["batches"] for x in seeds],
                            "mixed": [x["mixed"] / x["prompts"] for x in seeds]}
                row = {"rule": rule, "k_init": k_init, "prior": prior, "estimator": name, "mse": se / n,
                       "mse_ci95": ci95(per_seed["mse"]), "mean_rollouts": pooled["rollouts"] / pooled["prompts"],
                       "rounds": pooled["rounds"] / pooled["batches"], "mixed": pooled["mixed"] / pooled["prompts"],
                       "seeds": per_seed}
                if undefined:
                    row["undefined_batches"] = undefined
                out.append(row)
        return out


def _zero() -> dict:
    return {"prompts": 0, "rollouts": 0.0, "rounds": 0, "batches": 0, "mixed": 0, "se": {}}
