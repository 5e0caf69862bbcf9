"""The OSLA stopping rule (one-step look-ahead, ``docs/method.md`` section 4): when is one more rollout worth it?

With k rollouts, mean v and prior V, the fused baseline's MSE is estimated as MSE(k) = D2 s2_k / (D2 + s2_k),
the prior's squared error D2 plugged in as max(0, (v - V)^2 - s2_k) (or floored at the value model's
variance). One more rollout is drawn while MSE(k) - MSE(k+1) exceeds its cost c, up to k_max. A prior the
rollouts accept (D2 = 0) stops at k_init; a clearly wrong one continues to k_max = 16 with the paper's
c = 0.0039; a moderately wrong one stops in between.

``rule="eb"`` [ours] uses the Beta-Binomial model of ``v05_eb_beta`` instead: true pass rates scatter around
the prior with the batch's fitted rho, so a prompt's pass rate has a Beta posterior and one more rollout
reduces its variance by p(1-p)/(n+1)^2. The batch, not one prompt's k rollouts, decides how far the prior
is trusted. The formulas live in :mod:`v05.baselines.shrinkage`; this module makes the decisions.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from v05._validation import check_choice, check_known_keys, check_number, check_positive_int
from v05.baselines.shrinkage import VARIANCES, eb_gain, expected_gain, fit_rho

RULES = ("paper", "eb")
DEFAULT_MAX_ROUNDS = 2
"""The one default round cap of every trainer. Uncapped, OSLA tops up one rollout per round: 9-13 rounds per
step; on a GPU each round is a generation pass. Capped at 2, a step is at most 3 passes, drawing about 4-5%
more rollouts for the same baseline error (1: 2 passes, 6-10% more, and up to +0.03 in the error ratio
under rule='eb'); in the CPU engine caps of 4/2/1 changed no accuracy beyond the seed noise (docs/rl.md,
"Ablations and throughput"; docs/method.md section 5)."""
K_MAX_LIMIT = 4096
"""Largest k_max accepted: beyond it a pass rate is pinned to +-0.01 anyway, and a typo (k_max=10**6 with
cost 0) would otherwise draw rollouts for minutes."""


@dataclass(frozen=True)
class OslaConfig:
    """Settings of the sequential budget; checked when built (``OslaConfig.coerce`` also takes a dict)."""

    k_init: int = 4
    """Rollouts every prompt gets in the first round."""
    k_max: int = 16
    """No prompt gets more than this."""
    cost: float = 0.0039
    """Cost of one rollout in squared +-1 reward units (the paper's scale; about 1/256). The rule compares
    it with the MSE reduction expressed on that scale, so one c means the same stopping for any scale."""
    variance: str = "worst"
    """Sampling-variance model of the mean: 'worst' (the paper's bound) or 'bernoulli' (plug-in)."""
    per_round: int = 1
    """Extra rollouts a prompt that wants more gets in one round (at least; see max_rounds)."""
    rule: str = "paper"
    """'paper': the per-prompt deviation test's plug-in MSE (docs/method.md 4.1); 'eb': the Beta posterior
    variance under the batch's fitted rho (needs k_init >= 2)."""
    max_rounds: int | None = DEFAULT_MAX_ROUNDS
    """Most top-up rounds after the first (each round is one generation pass); None (in TOML: "none"): no
    cap but k_max.
    Under a cap a prompt that wants more gets, in each round, at least its projected need (the rule run
    forward with its current estimates) divided by the rounds left, so fewer rounds buy the same top-ups.
    Default 2 (``DEFAULT_MAX_ROUNDS``, the same in every trainer): a step is at most 3 generation passes."""

    def __post_init__(self):
        check_positive_int(self.k_init, "k_init")
        check_positive_int(self.k_max, "k_max")
        check_positive_int(self.per_round, "per_round")
        if self.k_max < self.k_init:
            raise ValueError(f"k_max ({self.k_max}) must be >= k_init ({self.k_init})")
        if self.k_max > K_MAX_LIMIT:
            raise ValueError(f"k_max == {self.k_max}, must be <= {K_MAX_LIMIT}")
        check_number(self.cost, "cost", minimum=0.0)
        check_choice(self.variance, "variance", VARIANCES)
        check_choice(self.rule, "rule", RULES)
        if isinstance(self.max_rounds, str) and self.max_rounds.lower() == "none":  # TOML has no null
            object.__setattr__(self, "max_rounds", None)
        if self.max_rounds is not None:
            check_positive_int(self.max_rounds, "max_rounds", minimum=0)
        if self.rule == "eb" and self.k_init < 2:
            raise ValueError(f"rule='eb' fits rho from the first round: k_init ({self.k_init}) must be >= 2")

    @classmethod
    def coerce(cls, config) -> "OslaConfig":
        """An ``OslaConfig`` as given, or built from a mapping of its fields (unknown keys raise)."""
        if isinstance(config, cls):
            return config
        if isinstance(config, Mapping):
            check_known_keys(config, [f.name for f in dataclasses.fields(cls)], "OslaConfig")
            return cls(**config)
        raise TypeError(f"config must be an OslaConfig or a dict of its fields; got {type(config).__name__}")


def wants(gain, k, config: OslaConfig) -> np.ndarray:
    """True while the gain (unit scale, so x4 for +-1 units) exceeds the cost and k < k_max."""
    return (np.asarray(k) < config.k_max) & (4.0 * np.asarray(gain) > config.cost)


def wants_more(v, k, prior, config: OslaConfig, *, prior_var=None) -> np.ndarray:
    """OSLA's per-prompt decision under the paper's rule (``rule="eb"`` needs the whole batch: see
    :class:`v05.budget.RolloutPlan`)."""
    if config.rule != "paper":
        raise ValueError(f"wants_more decides per prompt under rule='paper'; rule={config.rule!r} fits the "
                         "batch, so use RolloutPlan or allocate")
    return wants(expected_gain(v, k, prior, prior_var=prior_var, variance=config.variance), k, config)


@dataclass(frozen=True)
class BatchState:
    """What the rule reads about a batch of prompts: unit-scale means, rollout counts, priors (all (M,))."""

    mean: np.ndarray
    counts: np.ndarray
    prior: np.ndarray
    prior_var: np.ndarray | None = None


def gains(state: BatchState, config: OslaConfig, k_next=None) -> np.ndarray:
    """Expected MSE reduction (unit scale) of one more rollout for every prompt, at ``k_next`` rollouts
    (default: the current counts) with the current estimates held fixed."""
    k_next = state.counts if k_next is None else k_next
    if config.rule == "eb":
        rho = fit_rho(state.mean, state.counts, state.prior)
        return eb_gain(state.mean, k_next, state.prior, 1.0 if rho is None else rho)
    return expected_gain(state.mean, state.counts, state.prior, prior_var=state.prior_var,
                         variance=config.variance, k_next=k_next)


def projected_extra(state: BatchState, config: OslaConfig) -> np.ndarray:
    """Rollouts each prompt would still draw if the rule ran on with its current estimates held fixed
    (the first k' >= k where one more is no longer worth its cost, minus k); 0 for prompts that stop now.

    The gain falls with k' under both rules, so the first stop is the stop.
    """
    counts = np.asarray(state.counts)
    extra = np.zeros(len(counts), dtype=np.int64)
    going = wants(gains(state, config), counts, config)
    k_next = counts.copy()
    while going.any():
        extra += going
        k_next = k_next + going
        going &= wants(gains(state, config, k_next), k_next, config)
    return extra
