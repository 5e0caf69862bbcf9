"""Estimators that use only the rollouts: GRPO and its relatives.

Edge-case rules (each tested): a group of one rollout has baseline = its reward and advantage 0 under
``mean``/``dr_grpo``; ``rloo`` and ``grpo`` with a per-group std raise for it (their formulas are undefined
there, and frameworks disagree on what to return); an all-equal group has advantage 0 (not NaN).
"""

from __future__ import annotations

import numpy as np

from v05._validation import Choice, Flag, Integer, Number
from v05.baselines.batch import Batch
from v05.baselines.registry import KernelOut, UndefinedError, register

EPS = Number(minimum=0.0, min_open=True, hint="it keeps all-equal groups at 0, not NaN")
"""The check of every ``eps`` option: a finite number > 0."""


def group_std(batch: Batch, ddof: int) -> np.ndarray:
    """Per-group std of the unit-scale rewards (exactly 0 for all-equal groups)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.sqrt(batch.sum_sq_dev / (batch.counts - ddof))


@register("mean")
def mean(batch: Batch) -> KernelOut:
    """Empirical group mean (GRPO's baseline): b = mean of the group's rewards, A = r - b.

    References: DeepSeekMath (arXiv 2402.03300); verl ``compute_grpo_outcome_advantage`` with
    ``norm_adv_by_std_in_grpo=False``.
    """
    return KernelOut(batch.mean[batch.inv])


@register("dr_grpo")
def dr_grpo(batch: Batch) -> KernelOut:
    """Dr. GRPO: A = r - group mean, never divided by a std (arXiv 2503.20783).

    The advantage equals ``mean``'s; Dr. GRPO's other change (a constant loss normaliser instead of
    1/|y|) belongs to the loss, not the baseline.
    """
    return KernelOut(batch.mean[batch.inv])


@register("grpo", options={"std_scale": Choice(("group", "batch", "none")), "eps": EPS, "ddof": Integer(0)})
def grpo(batch: Batch, *, std_scale: str = "group", eps: float = 1e-6, ddof: int = 1) -> KernelOut:
    """GRPO: A = (r - group mean) / (std + eps), the std taken per group, over the batch, or not at all.

    ``eps=1e-6`` matches verl (``core_algos.py``); TRL adds 1e-4 (``grpo_trainer.py``), OpenRLHF 1e-9.
    ``std_scale="batch"`` is TRL's ``scale_rewards="batch"``; ``"none"`` is Dr. GRPO. Stds use ``ddof=1``
    (torch's default, as both frameworks). A group of one rollout raises under ``std_scale="group"``.
    """
    baseline = batch.mean[batch.inv]
    if std_scale == "none":
        return KernelOut(baseline)
    width = batch.scale.width
    if std_scale == "group":
        if ddof >= 1 and (batch.counts <= ddof).any():
            g = int(np.flatnonzero(batch.counts <= ddof)[0])
            raise UndefinedError(
                f"group {batch.label(g)!r} has {batch.counts[g]} rollout(s); grpo with std_scale='group' and "
                f"ddof={ddof} needs >= {ddof + 1} (use std_scale='batch' or 'none', or estimator 'mean')"
            )
        std = width * group_std(batch, ddof)[batch.inv]
    else:  # "batch"
        if len(batch.y) <= ddof:
            raise UndefinedError(f"grpo with std_scale='batch' needs more than ddof={ddof} rollouts")
        std = width * float(np.std(batch.y, ddof=ddof))
    return KernelOut(baseline, scale_by=std + eps)


@register("rloo", min_group_size=2)
def rloo(batch: Batch) -> KernelOut:
    """RLOO: b_i = mean of the *other* rollouts of the group (arXiv 2402.14740), so b_i is independent of r_i.

    A group of one rollout raises (verl's loop and vectorised RLOO disagree there: 0.7 vs 0.0).
    """
    k = batch.counts[batch.inv]
    return KernelOut((batch.total[batch.inv] - batch.y) / (k - 1))


@register("reinforce_pp", options={"group_baseline": Flag(), "eps": EPS})
def reinforce_pp(batch: Batch, *, group_baseline: bool = True, eps: float = 1e-8) -> KernelOut:
    """REINFORCE++(-baseline): A = r - group mean, then whitened over the whole batch (arXiv 2501.03262).

    ``group_baseline=False`` is plain REINFORCE++ (batch mean only). Whitening matches verl's
    ``masked_whiten``: (a - mean(a)) / sqrt(var(a, ddof=1) + eps). The reported baseline is the group (or
    batch) mean plus the batch centring shift, so that r - baseline is the centred, un-scaled advantage.
    """
    baseline = batch.mean[batch.inv] if group_baseline else np.full(len(batch.y), batch.y.mean())
    adv = batch.scale.width * (batch.y - baseline)
    if len(adv) < 2:
        raise UndefinedError("reinforce_pp whitens over the batch: it needs >= 2 rollouts")
    centre = adv.mean()
    std = np.sqrt(adv.var(ddof=1) + eps)
    # The wrapper forms r - b; shift b so that r - b = a - mean(a), then divide by the batch std.
    return KernelOut(baseline + centre / batch.scale.width, scale_by=std)


@register("dapo", options={"eps": EPS})
def dapo(batch: Batch, *, eps: float = 1e-6) -> KernelOut:
    """DAPO: GRPO's group-normalised advantage plus the dynamic-sampling filter (arXiv 2503.14476).

    ``keep`` is False for every rollout of a group whose rewards are all equal (all correct, all wrong, or
    a single rollout): those groups carry no signal and DAPO drops them and samples more prompts. Their
    advantage is 0.
    """
    baseline = batch.mean[batch.inv]
    std = np.where(batch.all_equal, 0.0, group_std(batch, ddof=1))
    keep = ~batch.all_equal[batch.inv]
    scale_by = np.where(keep, batch.scale.width * std[batch.inv] + eps, 1.0)
    return KernelOut(baseline, keep=keep, scale_by=scale_by)
