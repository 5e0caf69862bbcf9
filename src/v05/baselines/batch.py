"""Validated, group-factorised rollout batches: what every estimator kernel receives.

Rewards are mapped to [0, 1] by the declared reward scale, so every kernel does its arithmetic on one
scale (a pass rate) and a prior is always a pass rate in [0, 1], whatever the rewards' scale.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from v05._validation import as_1d, check_group, check_in_range, check_same_length, py
from v05.baselines.prior import Prior
from v05.baselines.scale import RewardScale

PRIOR_CARRIES_VAR = ("prior is a Prior, which carries its own variance: build it as Prior(mean, var) and leave "
                     "prior_var=None (prior_var= is for per-rollout prior arrays)")


def factorize(group: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(labels, inverse)`` with ``labels[inverse] == group``; labels sorted. ``group`` is checked
    (:func:`v05._validation.check_group`: one id type, no NaN).

    Non-negative integer ids take an O(n) bincount path (no sort); anything else uses ``np.unique``.
    """
    if group.dtype.kind in "iu" and len(group) and group.min() >= 0 and group.max() < 4 * len(group) + 1024:
        present = np.bincount(group) > 0
        labels = np.flatnonzero(present)
        code = np.cumsum(present) - 1
        return labels, code[group]
    labels, inverse = np.unique(group, return_inverse=True)
    return labels, inverse.reshape(-1)


@dataclass(frozen=True, eq=False)
class Batch:
    """Rewards on the unit scale plus group structure and optional per-group prior.

    Attributes
    ----------
    y : ndarray of shape (n,)
        Rewards mapped to [0, 1].
    inv : ndarray of shape (n,)
        Group index of each rollout, in ``0..n_groups-1``.
    labels : ndarray of shape (n_groups,)
        The caller's group ids.
    prior, prior_var : ndarray of shape (n_groups,) or None
        Prior pass rate and its variance, per group (in the order of ``labels``).
    """

    y: np.ndarray
    inv: np.ndarray
    labels: np.ndarray
    prior: np.ndarray | None
    prior_var: np.ndarray | None
    scale: RewardScale

    @property
    def n_groups(self) -> int:
        return len(self.labels)

    def gsum(self, x: np.ndarray) -> np.ndarray:
        """Sum of a per-rollout array within each group."""
        return np.bincount(self.inv, weights=x, minlength=self.n_groups)

    @cached_property
    def counts(self) -> np.ndarray:
        """Rollouts per group, shape (n_groups,)."""
        return np.bincount(self.inv, minlength=self.n_groups)

    @cached_property
    def total(self) -> np.ndarray:
        """Sum of unit-scale rewards per group."""
        return self.gsum(self.y)

    @cached_property
    def first(self) -> np.ndarray:
        """The first unit-scale reward of each group."""
        return first_per_group(self.y, self.inv, self.n_groups)

    @cached_property
    def all_equal(self) -> np.ndarray:
        """True for groups whose rewards are all exactly equal (lone rollouts included)."""
        return np.bincount(self.inv, weights=self.y != self.first[self.inv], minlength=self.n_groups) == 0

    @cached_property
    def mean(self) -> np.ndarray:
        """Empirical mean of unit-scale rewards per group; exactly the common value for all-equal groups,
        so that their deviations r - mean are exactly 0 (a float sum of three 0.1s is not 0.3). Sums of
        0/1 rewards are exact, so that case skips the extra pass."""
        if self.is_binary:
            return self.total / self.counts
        return np.where(self.all_equal, self.first, self.total / self.counts)

    @cached_property
    def is_binary(self) -> bool:
        """True when every unit-scale reward is exactly 0 or 1 (sums are then exact)."""
        return bool(np.all((self.y == 0.0) | (self.y == 1.0)))

    @cached_property
    def sum_sq_dev(self) -> np.ndarray:
        """Sum of squared deviations from the group mean, per group (exactly 0 for all-equal groups).

        For 0/1 rewards it is total - total^2 / k, with no pass over the rollouts."""
        if self.is_binary:
            return self.total - self.total * self.total / self.counts
        dev = self.y - self.mean[self.inv]
        return self.gsum(dev * dev)

    def label(self, g: int):
        """The caller's id of group ``g`` as a plain Python value (for messages)."""
        return py(self.labels[g])


def first_per_group(values: np.ndarray, inv: np.ndarray, n_groups: int) -> np.ndarray:
    """The value of each group's first rollout, shape (n_groups,)."""
    first = np.empty(n_groups, dtype=np.float64)
    first[inv[::-1]] = values[::-1]  # the last write wins: the first rollout of each group
    return first


def _per_group(values: np.ndarray, name: str, inv: np.ndarray, labels: np.ndarray, n_groups: int) -> np.ndarray:
    """Collapse a per-rollout column that must be constant within each group to one value per group."""
    first = first_per_group(values, inv, n_groups)
    bad = values != first[inv]
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        g = inv[i]
        raise ValueError(
            f"{name}[{i}] = {py(values[i])!r} but another rollout of group {py(labels[g])!r} has {py(first[g])!r}: "
            f"{name} must be constant within a group (it is per prompt)"
        )
    return first


def make_batch(rewards, group, *, prior=None, prior_var=None, scale="binary") -> Batch:
    """Validate inputs once, at the public entry point, and factorise the groups.

    ``prior`` is either a :class:`~v05.baselines.prior.Prior` (one row per prompt, aligned with the group ids
    by its rule; it carries its own variance, so ``prior_var`` must then be None) or a per-rollout array
    (with ``prior_var`` per rollout), which must be constant within each group.

    Raises
    ------
    TypeError
        Rewards, prior or prior_var that are not numbers; group ids of mixed types (``1`` and ``"1"``); a
        ``Prior`` together with ``prior_var``.
    ValueError
        Rewards not finite or outside the scale; prior outside [0, 1]; prior_var negative or not finite;
        lengths that differ; a per-rollout prior that differs within a group; a group id with no row in a
        ``Prior``; NaN group ids. Messages name the field, row and group.
    """
    scale = RewardScale.parse(scale)
    rewards = as_1d(rewards, "rewards")
    if rewards.dtype.kind not in "fiub":
        raise TypeError(f"rewards must be numbers; got dtype {rewards.dtype}")
    rewards = rewards.astype(np.float64, copy=False)
    group = check_group(group)
    per_group = isinstance(prior, Prior)
    if per_group and prior_var is not None:
        raise TypeError(PRIOR_CARRIES_VAR)
    if not per_group:
        prior = None if prior is None else as_1d(prior, "prior", dtype=np.float64)
        prior_var = None if prior_var is None else as_1d(prior_var, "prior_var", dtype=np.float64)
    n = check_same_length(rewards=rewards, group=group, prior=None if per_group else prior, prior_var=prior_var)
    if n == 0:
        raise ValueError("rewards is empty: an estimator needs at least one rollout")
    labels, inv = factorize(group)
    if not np.isfinite(rewards).all() or rewards.min() < scale.lo or rewards.max() > scale.hi:
        check_in_range(rewards, "rewards", scale.lo, scale.hi, labels=group)
    prior_g = var_g = None
    if per_group:
        rows = prior.rows_of(labels)
        prior_g = prior.mean[rows]
        var_g = None if prior.var is None else prior.var[rows]
    if prior is not None and not per_group:
        check_in_range(prior, "prior", 0.0, 1.0, labels=group)
        prior_g = _per_group(prior, "prior", inv, labels, len(labels))
    if prior_var is not None:
        check_in_range(prior_var, "prior_var", 0.0, np.finfo(np.float64).max, labels=group)
        var_g = _per_group(prior_var, "prior_var", inv, labels, len(labels))
    return Batch(scale.to_unit(rewards), inv, labels, prior_g, var_g, scale)
