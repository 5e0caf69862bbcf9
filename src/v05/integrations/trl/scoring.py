"""From a generation batch's flat rewards to the advantages TRL trains on, and the V0.5 metrics it logs.

The baseline itself comes from ``v05.baselines.compute``; this module only applies the integration's rules
around it (which completions enter the estimator) and summarises the step.

Rules (each tested):

- An **unscorable** completion (every reward function returned None: TRL's NaN) is left out of the estimator
  and of the prompt's observed pass rate, and gets advantage 0 (TRL zeroes it too).
- A prompt needs **two scorable completions** to enter the estimator; with fewer, its completions get
  advantage 0 (one completion has no within-prompt spread: GRPO's std is undefined, RLOO has no other
  rollout; TRL zeroes such a group through its NaN std).
- The **planner** (top-ups) is told an unscorable completion's reward as the prompt's prior (mapped onto the
  reward scale): it counts as spent but pulls neither for nor against the prior. This value only steers
  the allocation; it never reaches an advantage.
- A finite reward outside ``reward_scale`` raises, naming the completion and the setting.
- If the estimator is undefined on what remains (``UndefinedError``, e.g. an empirical-Bayes fit left with no
  group), the step trains on zero advantages and says so (a warning and ``v05/undefined``), rather than
  crashing a long run.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from v05._validation import py
from v05.baselines import Prior, RewardScale, UndefinedError, compute

MIN_SCORABLE = 2
"""Scorable completions a prompt needs to enter the estimator."""
REJECT_WEIGHT = 0.5
"""A prompt's prior counts as rejected when its fusion weight on the rollouts exceeds this."""


@dataclass(frozen=True)
class StepScore:
    """Advantages and per-prompt summaries of one generation batch.

    Attributes
    ----------
    advantage : ndarray of shape (n_rows,)
        What TRL trains on, in the rows' order (0 for rows left out).
    counts : ndarray of shape (M,)
        Scorable completions of each prompt.
    pass_rate : ndarray of shape (M,)
        Mean scorable reward of each prompt on the unit scale [0, 1] (NaN without any).
    weight : ndarray of shape (M,) or None
        The fusion weight on the rollouts of each prompt, averaged over its completions (it varies only for
        the leave-one-out forms); NaN where the prompt was left out; None for estimators without a prior.
    undefined : str or None
        Why the estimator could not run on this batch (advantages are then all 0).
    """

    advantage: np.ndarray
    counts: np.ndarray
    pass_rate: np.ndarray
    weight: np.ndarray | None
    undefined: str | None = None


def observed_pass_rates(rewards: np.ndarray, group: np.ndarray, n_prompts: int, scale: RewardScale):
    """Unit-scale mean of each prompt's scorable rewards and their count, each of shape (M,)."""
    ok = ~np.isnan(rewards)
    counts = np.bincount(group[ok], minlength=n_prompts)
    totals = np.bincount(group[ok], weights=scale.to_unit(rewards[ok]), minlength=n_prompts)
    with np.errstate(invalid="ignore", divide="ignore"):
        return totals / counts, counts


def check_rewards_in_scale(rewards: np.ndarray, scale: RewardScale, setting: str) -> None:
    """Raise ``ValueError`` for the first finite reward outside the scale (NaN marks an unscorable completion)."""
    bad = ~np.isnan(rewards) & ((rewards < scale.lo) | (rewards > scale.hi) | ~np.isfinite(rewards))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(f"rewards[{i}] = {py(rewards[i])!r}: the summed, weighted reward must lie in "
                         f"[{scale.lo:g}, {scale.hi:g}] (reward_scale = {setting!r}; {int(bad.sum())} bad value(s))")


def planner_rewards(rewards: np.ndarray, prior_of_row: np.ndarray, scale: RewardScale) -> np.ndarray:
    """``rewards`` with each unscorable (NaN) entry replaced by its prompt's prior on the reward scale."""
    return np.where(np.isnan(rewards), scale.from_unit(prior_of_row), rewards)


def score_step(rewards, group, n_prompts: int, *, estimator: str, options: dict, scale: RewardScale,
               prior: Prior | None = None) -> StepScore:
    """Advantages of a generation batch under the module's rules.

    Parameters
    ----------
    rewards : ndarray of shape (n_rows,)
        Reward of each completion, NaN if unscorable.
    group : ndarray of shape (n_rows,)
        Prompt index of each completion, in [0, n_prompts).
    prior : Prior, optional
        Prior pass rate (and variance) of each prompt, row j for prompt j, for estimators that fuse one.
    """
    pass_rate, counts = observed_pass_rates(rewards, group, n_prompts, scale)
    used = ~np.isnan(rewards) & (counts[group] >= MIN_SCORABLE)  # (n_rows,)
    advantage = np.zeros(len(rewards))
    weight = None
    if not used.any():
        return StepScore(advantage, counts, pass_rate, weight)
    g = group[used]
    try:
        res = compute(estimator, rewards[used], g, scale=scale, **options, prior=prior)
    except UndefinedError as e:
        warnings.warn(f"estimator {estimator!r} is undefined on this generation batch ({e}); its completions "
                      "train with advantage 0", RuntimeWarning, stacklevel=2)
        return StepScore(advantage, counts, pass_rate, weight, undefined=str(e))
    advantage[used] = np.where(res.keep, res.advantage, 0.0)
    if res.weight is not None:
        with np.errstate(invalid="ignore", divide="ignore"):  # prompts left out: NaN
            weight = np.bincount(g, weights=res.weight, minlength=n_prompts) / np.bincount(g, minlength=n_prompts)
    return StepScore(advantage, counts, pass_rate, weight)


def step_metrics(score: StepScore, rollouts: np.ndarray, k_init: int, rounds: int,
                 prior: Prior | None = None) -> dict[str, float]:
    """The V0.5 scalars of one generation batch (names and meanings in docs/trl.md "Metrics").

    ``rollouts`` (M,) counts every completion drawn per prompt (unscorable ones included), ``k_init`` of them
    in the first round; ``rounds`` is the number of top-up generation passes.
    """
    seen = score.counts > 0
    out = {
        "v05/rollouts_per_prompt_mean": float(rollouts.mean()),
        "v05/rollouts_per_prompt_max": float(rollouts.max()),
        "v05/topup_rounds": float(rounds),
        "v05/topup_prompts_frac": float((rollouts > k_init).mean()),
        "v05/zero_advantage_frac": float((score.advantage == 0).mean()),
        "v05/undefined": float(score.undefined is not None),
    }
    if score.weight is not None and np.isfinite(score.weight).any():
        w = score.weight[np.isfinite(score.weight)]
        out["v05/weight_mean"] = float(w.mean())
        out["v05/prior_rejected_frac"] = float((w > REJECT_WEIGHT).mean())
    if prior is not None and seen.any():
        out["v05/prior_mean"] = float(prior.mean[seen].mean())
        out["v05/pass_rate_mean"] = float(score.pass_rate[seen].mean())
        out["v05/prior_mse"] = float(((prior.mean[seen] - score.pass_rate[seen]) ** 2).mean())
    return out
