"""Sequential rollout budgets: the OSLA stopping rule and an allocator that draws rollouts in rounds.

OSLA (one-step look-ahead, METHOD.md 2.4): with k rollouts, mean v and prior V, the fused baseline's MSE is
estimated as MSE(k) = D2 s2_k / (D2 + s2_k), the prior's squared error D2 plugged in as
max(0, (v - V)^2 - s2_k) (or floored at the value model's variance). One more rollout is drawn while
MSE(k) - MSE(k+1) exceeds its cost c, up to k_max. A prior the rollouts accept (D2 = 0) stops at k_init;
a clearly wrong one (D2 large) continues to k_max = 16 with the paper's c = 0.0039, a moderately wrong one
stops in between.

``rule="eb"`` [ours] uses the Beta-Binomial model of ``v05_eb_beta`` instead: true pass rates scatter around
the prior with the batch's fitted rho, so a prompt's pass rate has a Beta posterior, and one more rollout reduces its
variance by p(1-p)/(n+1)^2 (n the posterior's total count). Rollouts then go where the posterior is least
certain; the batch, not one prompt's k rollouts, decides how far the prior is trusted.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from v05._validation import as_1d, check_in_range, check_positive_int
from v05.baselines.batch import RewardScale
from v05.baselines.fused import bernoulli_var, fit_rho, worst_case_var

VARIANCES = ("worst", "bernoulli")
RULES = ("paper", "eb")


@dataclass(frozen=True)
class OslaConfig:
    """Settings of the sequential budget; checked when built."""

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
    """Extra rollouts a prompt that wants more gets in one round."""
    rule: str = "paper"
    """'paper': the per-prompt deviation test's plug-in MSE (METHOD.md 2.4); 'eb': the Beta posterior
    variance under the batch's fitted rho (needs k_init >= 2)."""

    def __post_init__(self):
        check_positive_int(self.k_init, "k_init")
        check_positive_int(self.k_max, "k_max")
        check_positive_int(self.per_round, "per_round")
        if self.k_max < self.k_init:
            raise ValueError(f"k_max ({self.k_max}) must be >= k_init ({self.k_init})")
        if not (np.isfinite(self.cost) and self.cost >= 0):
            raise ValueError(f"cost == {self.cost!r}, must be a finite number >= 0")
        if self.variance not in VARIANCES:
            raise ValueError(f"variance={self.variance!r}; expected one of {VARIANCES}")
        if self.rule not in RULES:
            raise ValueError(f"rule={self.rule!r}; expected one of {RULES}")
        if self.rule == "eb" and self.k_init < 2:
            raise ValueError(f"rule='eb' fits rho from the first round: k_init ({self.k_init}) must be >= 2")


def _sampling_var(v: np.ndarray, k: np.ndarray, variance: str) -> np.ndarray:
    return worst_case_var(k) if variance == "worst" else bernoulli_var(v, k)


def _prior_error(v, k, prior, prior_var, variance: str) -> np.ndarray:
    """Plug-in squared error of the prior, D2 = max(0, (v - V)^2 - s2_k), floored at ``prior_var``."""
    d2 = np.maximum(0.0, (v - prior) ** 2 - _sampling_var(v, k, variance))
    return d2 if prior_var is None else np.maximum(d2, prior_var)


def _fused_mse(d2: np.ndarray, s2: np.ndarray) -> np.ndarray:
    """MSE of the optimally weighted fusion of a prior with squared error d2 and a mean with variance s2."""
    with np.errstate(invalid="ignore"):
        return np.where(d2 + s2 > 0, d2 * s2 / (d2 + s2), 0.0)


def estimated_mse(v, k, prior, *, prior_var=None, variance: str = "worst") -> np.ndarray:
    """OSLA's estimate of the fused baseline's MSE (unit scale) after k rollouts with mean v."""
    v, k, prior = np.asarray(v, float), np.asarray(k, float), np.asarray(prior, float)
    return _fused_mse(_prior_error(v, k, prior, prior_var, variance), _sampling_var(v, k, variance))


def expected_gain(v, k, prior, *, prior_var=None, variance: str = "worst") -> np.ndarray:
    """Expected MSE reduction (unit scale) of one more rollout: MSE(k) - MSE(k+1) with D2 held fixed."""
    v, k, prior = np.asarray(v, float), np.asarray(k, float), np.asarray(prior, float)
    d2 = _prior_error(v, k, prior, prior_var, variance)
    return _fused_mse(d2, _sampling_var(v, k, variance)) - _fused_mse(d2, _sampling_var(v, k + 1, variance))


def eb_gain(mean, k, prior, rho: float) -> np.ndarray:
    """Expected posterior-variance reduction (unit scale) of one more rollout under the Beta prior of
    strength m = 1/rho - 1 centred on the prior (plus Jeffreys' half counts): p(1-p)/(n+1)^2."""
    mean, k, prior = np.asarray(mean, float), np.asarray(k, float), np.asarray(prior, float)
    if rho <= 0.0:
        return np.zeros_like(mean)
    m = 1.0 / rho - 1.0
    alpha = m * prior + k * mean + 0.5
    n = m + k + 1.0
    p = alpha / n
    return p * (1.0 - p) / (n + 1.0) ** 2


def _wants(gain: np.ndarray, k, config: OslaConfig) -> np.ndarray:
    """True while the gain (unit scale, so x4 for +-1 units) exceeds the cost and k < k_max."""
    return (np.asarray(k) < config.k_max) & (4.0 * gain > config.cost)


def wants_more(v, k, prior, config: OslaConfig, *, prior_var=None) -> np.ndarray:
    """OSLA's per-prompt decision under the paper's rule (``rule="eb"`` needs the whole batch: see allocate)."""
    if config.rule != "paper":
        raise ValueError(f"wants_more decides per prompt under rule='paper'; rule={config.rule!r} fits the "
                         "batch, so use allocate")
    return _wants(expected_gain(v, k, prior, prior_var=prior_var, variance=config.variance), k, config)


@dataclass(frozen=True)
class Allocation:
    """Rollouts drawn by :func:`allocate`, in the order ``generate`` returned them.

    ``rewards``, ``group`` (prompt index 0..M-1) and ``round`` have one entry per rollout; ``counts`` one
    per prompt; ``rounds`` is the number of generation calls made.
    """

    rewards: np.ndarray
    group: np.ndarray
    round: np.ndarray
    counts: np.ndarray
    rounds: int


Generate = Callable[[np.ndarray, np.ndarray], np.ndarray]


def _draw(generate: Generate, ids: np.ndarray, idx: np.ndarray, n: np.ndarray, scale: RewardScale,
          round_no: int) -> np.ndarray:
    rewards = as_1d(generate(ids[idx], n), f"generate(...) output in round {round_no}", dtype=np.float64)
    if len(rewards) != int(n.sum()):
        raise ValueError(
            f"generate returned {len(rewards)} rewards in round {round_no}; it was asked for {int(n.sum())} "
            f"({len(idx)} prompts)"
        )
    check_in_range(rewards, f"round {round_no} rewards", scale.lo, scale.hi)
    return rewards


def allocate(
    generate: Generate,
    prior,
    *,
    prompt_ids=None,
    config: OslaConfig = OslaConfig(),
    prior_var=None,
    budget: int | None = None,
    scale="binary",
) -> Allocation:
    """Draw k_init rollouts per prompt, then top up in rounds the prompts OSLA says are worth it.

    Parameters
    ----------
    generate : callable ``(prompts (m,), n (m,)) -> rewards (n.sum(),)``
        Draws ``n[j]`` rollouts of prompt ``prompts[j]``, returned prompt by prompt. All prompts that
        want more in a round are asked for in one call (one generation batch per round).
    prior : array-like of shape (M,)
        Prior pass rate of each prompt, in [0, 1].
    prompt_ids : array-like of shape (M,), optional
        What ``generate`` receives to name the prompts; by default their positions 0..M-1.
        ``Allocation.group`` always holds positions.
    prior_var : array-like of shape (M,), optional
        The prior's variance; floors OSLA's estimate of the prior's squared error.
    budget : int, optional
        Total rollouts allowed for the whole batch (initial ones included). When the prompts that want
        more exceed what is left, the rollouts go to the largest expected MSE reductions first.
    scale : reward scale of ``generate``'s rewards ('binary', 'pm1' or (lo, hi)).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> truth = np.array([0.5, 0.95])
    >>> gen = lambda idx, n: (rng.random(n.sum()) < np.repeat(truth[idx], n)).astype(float)
    >>> alloc = allocate(gen, prior=[0.5, 0.0])   # a right prior and a wrong one
    >>> alloc.counts.tolist()
    [4, 16]
    """
    scale = RewardScale.parse(scale)
    prior = as_1d(prior, "prior", dtype=np.float64)
    check_in_range(prior, "prior", 0.0, 1.0)
    if prior_var is not None:
        prior_var = as_1d(prior_var, "prior_var", dtype=np.float64)
        if len(prior_var) != len(prior):
            raise ValueError(f"prior_var has {len(prior_var)} entries for {len(prior)} prompts")
        check_in_range(prior_var, "prior_var", 0.0, np.finfo(np.float64).max)
    m = len(prior)
    if m == 0:
        raise ValueError("prior is empty: allocate needs at least one prompt")
    ids = np.arange(m) if prompt_ids is None else as_1d(prompt_ids, "prompt_ids")
    if len(ids) != m:
        raise ValueError(f"prompt_ids has {len(ids)} entries for {m} prompts")
    if budget is not None:
        check_positive_int(budget, "budget")
        if budget < m * config.k_init:
            raise ValueError(f"budget ({budget}) is below k_init x prompts ({config.k_init} x {m} = {m * config.k_init})")

    idx = np.arange(m)
    n = np.full(m, config.k_init)
    chunks = [(_draw(generate, ids, idx, n, scale, 0), np.repeat(idx, n), 0)]
    counts = n.copy()
    totals = np.bincount(chunks[0][1], weights=scale.to_unit(chunks[0][0]), minlength=m)
    spent, round_no = int(counts.sum()), 0
    while True:
        mean = totals / counts
        if config.rule == "eb":
            gain = eb_gain(mean, counts, prior, fit_rho(mean, counts, prior))
        else:
            gain = expected_gain(mean, counts, prior, prior_var=prior_var, variance=config.variance)
        want = np.flatnonzero(_wants(gain, counts, config))
        extra = np.minimum(config.per_round, config.k_max - counts[want])
        if budget is not None:
            order = np.argsort(-gain[want], kind="stable")
            want, extra = want[order], extra[order]
            before = np.cumsum(extra) - extra  # rollouts promised to larger gains
            extra = np.clip(budget - spent - before, 0, extra)
            want, extra = want[extra > 0], extra[extra > 0]
        if len(want) == 0:
            break
        round_no += 1
        order = np.argsort(want, kind="stable")  # ask in prompt order
        want, extra = want[order], extra[order]
        rewards = _draw(generate, ids, want, extra, scale, round_no)
        group = np.repeat(want, extra)
        chunks.append((rewards, group, round_no))
        counts[want] += extra
        totals += np.bincount(group, weights=scale.to_unit(rewards), minlength=m)
        spent += int(extra.sum())
    return Allocation(
        rewards=np.concatenate([c[0] for c in chunks]),
        group=np.concatenate([c[1] for c in chunks]),
        round=np.concatenate([np.full(len(c[0]), c[2]) for c in chunks]),
        counts=counts,
        rounds=round_no + 1,
    )
