"""Validated, group-factorised rollout batches: what every estimator kernel receives.

Rewards are mapped to [0, 1] by the declared reward scale, so every kernel does its arithmetic on one
scale (a pass rate) and a prior is always a pass rate in [0, 1], whatever the rewards' scale.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from v05._validation import as_1d, check_group, check_in_range, check_number, check_same_length, py


NAMED_SCALES = {"binary": (0.0, 1.0), "pm1": (-1.0, 1.0)}
SCALE_FORMS = "'binary', 'pm1', (lo, hi) or 'lo,hi'"


@dataclass(frozen=True)
class RewardScale:
    """The range [lo, hi] rewards live in. ``binary`` (0/1), ``pm1`` (+-1) or any bounded range.

    The worst-case variance of one reward is (hi - lo)^2 / 4 (a two-point distribution on the ends):
    1/4 for 0/1 rewards, 1 for +-1 rewards (the paper's s2 = 1/k).
    """

    lo: float
    hi: float

    def __post_init__(self):
        lo = check_number(self.lo, "scale lo")
        hi = check_number(self.hi, "scale hi")
        if hi <= lo:
            raise ValueError(f"reward scale needs finite lo < hi; got lo={py(self.lo)}, hi={py(self.hi)}")
        object.__setattr__(self, "lo", lo)
        object.__setattr__(self, "hi", hi)

    @classmethod
    def parse(cls, scale) -> "RewardScale":
        """Accept ``"binary"``, ``"pm1"``, a ``(lo, hi)`` pair, ``"lo,hi"`` or a ``RewardScale``."""
        if isinstance(scale, RewardScale):
            return scale
        if isinstance(scale, str):
            if scale in NAMED_SCALES:
                return cls(*NAMED_SCALES[scale])
            parts = scale.split(",")
            try:
                if len(parts) == 2:
                    return cls(float(parts[0]), float(parts[1]))
            except ValueError:  # text that is not a number (float() itself)
                pass
            raise ValueError(f"scale={scale!r}; expected {SCALE_FORMS} with numbers lo < hi")
        if isinstance(scale, (tuple, list, np.ndarray)) and len(scale) == 2:
            return cls(scale[0], scale[1])
        raise TypeError(f"scale must be {SCALE_FORMS}; got {type(scale).__name__} {scale!r}")

    @property
    def width(self) -> float:
        return self.hi - self.lo

    def to_unit(self, rewards: np.ndarray) -> np.ndarray:
        """Map rewards to [0, 1] (exact for the binary scale)."""
        return rewards if (self.lo, self.hi) == (0.0, 1.0) else (rewards - self.lo) / self.width

    def from_unit(self, values: np.ndarray) -> np.ndarray:
        """Map [0, 1] values (baselines, pass rates) back to the reward scale."""
        return values if (self.lo, self.hi) == (0.0, 1.0) else self.lo + self.width * values


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
        Prior pass rate and its variance, per group.
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

    Raises
    ------
    TypeError
        Rewards, prior or prior_var that are not numbers; group ids of mixed types (``1`` and ``"1"``).
    ValueError
        Rewards not finite or outside the scale; prior outside [0, 1]; prior_var negative or not finite;
        lengths that differ; a prior that differs within a group; NaN group ids. Messages name the field,
        row and group.
    """
    scale = RewardScale.parse(scale)
    rewards = as_1d(rewards, "rewards")
    if rewards.dtype.kind not in "fiub":
        raise TypeError(f"rewards must be numbers; got dtype {rewards.dtype}")
    rewards = rewards.astype(np.float64, copy=False)
    group = check_group(group)
    prior = None if prior is None else as_1d(prior, "prior", dtype=np.float64)
    prior_var = None if prior_var is None else as_1d(prior_var, "prior_var", dtype=np.float64)
    n = check_same_length(rewards=rewards, group=group, prior=prior, prior_var=prior_var)
    if n == 0:
        raise ValueError("rewards is empty: an estimator needs at least one rollout")
    labels, inv = factorize(group)
    if not np.isfinite(rewards).all() or rewards.min() < scale.lo or rewards.max() > scale.hi:
        check_in_range(rewards, "rewards", scale.lo, scale.hi, labels=group)
    prior_g = var_g = None
    if prior is not None:
        check_in_range(prior, "prior", 0.0, 1.0, labels=group)
        prior_g = _per_group(prior, "prior", inv, labels, len(labels))
    if prior_var is not None:
        check_in_range(prior_var, "prior_var", 0.0, np.finfo(np.float64).max, labels=group)
        var_g = _per_group(prior_var, "prior_var", inv, labels, len(labels))
    return Batch(scale.to_unit(rewards), inv, labels, prior_g, var_g, scale)
