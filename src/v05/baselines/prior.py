"""The one form of a prior (:class:`Prior`): each prompt's prior pass rate and its variance, from the prior
source that makes it (the value model, a dataset column, a callable...) to the estimator and the rollout
planner that read it (``docs/method.md`` 1, "Priors").

**Alignment rule.** A prior has one row per prompt. Without ``ids``, row g is the prompt whose rollouts carry
the group id g (the group ids are the row indices 0..M-1, as in every trainer of this project); with ``ids``,
the row of a group is the one whose id equals the group id. A group id with no row is an error naming it.
Rows no rollout refers to are allowed (a prompt whose rollouts were all dropped).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from v05._validation import as_1d, check_group, check_in_range, py

VAR_MAX = float(np.finfo(np.float64).max)


@dataclass(frozen=True, eq=False)
class Prior:
    """Prior pass rate of each of M prompts, checked once when built.

    Attributes
    ----------
    mean : ndarray of shape (M,)
        Prior pass rate of each prompt, finite in [0, 1].
    var : ndarray of shape (M,) or None
        Its variance (pass-rate units), finite >= 0; needed by the variance-weighted estimators.
    ids : ndarray of shape (M,) or None
        The group id of each row's prompt (distinct ints or strings); None: row g is group id g.

    The arrays are read-only copies. Errors name the field and the row (and its id).

    Examples
    --------
    >>> from v05.baselines import compute
    >>> prior = Prior([0.9, 0.1])                              # prompt 0, prompt 1
    >>> compute("v05_paper", [1, 1, 0, 0, 0, 0], [0, 0, 0, 1, 1, 1], prior=prior).baseline.round(3).tolist()
    [0.9, 0.9, 0.9, 0.1, 0.1, 0.1]
    >>> Prior([0.5, 1.5])
    Traceback (most recent call last):
    ...
    ValueError: prior mean[1] = 1.5: prior mean must be finite numbers in [0, 1] (1 bad value(s) in all)
    """

    mean: np.ndarray
    var: np.ndarray | None = None
    ids: np.ndarray | None = None

    def __post_init__(self):
        ids = None if self.ids is None else _frozen(check_group(self.ids).copy())
        labels = ids
        mean = _frozen(np.array(as_1d(self.mean, "prior mean", dtype=np.float64), dtype=np.float64))
        for name, values in (("prior var", self.var), ("prior ids", ids)):
            if values is not None and len(values) != len(mean):
                raise ValueError(f"{name} has {len(values)} row(s) but prior mean has {len(mean)}: one row per prompt")
        check_in_range(mean, "prior mean", 0.0, 1.0, labels=labels)
        var = None
        if self.var is not None:
            var = _frozen(np.array(as_1d(self.var, "prior var", dtype=np.float64), dtype=np.float64))
            check_in_range(var, "prior var", 0.0, VAR_MAX, labels=labels)
        if ids is not None and len(ids):
            _check_distinct(ids)
        object.__setattr__(self, "mean", mean)
        object.__setattr__(self, "var", var)
        object.__setattr__(self, "ids", ids)

    @classmethod
    def coerce(cls, value) -> Prior:
        """A :class:`Prior` as is, or one built from a ``(mean, var)`` pair (what prior sources returned before)."""
        if isinstance(value, Prior):
            return value
        if isinstance(value, tuple) and len(value) == 2:
            return cls(*value)
        raise TypeError(f"expected a Prior or a (mean, var) pair; got {type(value).__name__}")

    def __len__(self) -> int:
        return len(self.mean)

    def without_var(self) -> Prior:
        """The same prior with no variance (for a reader told to ignore it)."""
        return self if self.var is None else Prior(self.mean, None, self.ids)

    def rows_of(self, group_ids: np.ndarray) -> np.ndarray:
        """The row of each group id in ``group_ids`` (checked ids, e.g. a batch's sorted labels), by the module's
        alignment rule; ``ValueError`` naming the first id that has no row."""
        if self.ids is None:
            if group_ids.dtype.kind not in "iu":
                raise TypeError(f"group ids are {group_ids.dtype} (e.g. {py(group_ids[0])!r}) but the prior has no "
                                "ids: row g of a Prior without ids is group id g (ints 0..M-1); build it with "
                                "Prior(mean, var, ids=<the group id of each row>)")
            missing = (group_ids < 0) | (group_ids >= len(self))
            if missing.any():
                raise ValueError(f"group id {py(group_ids[np.flatnonzero(missing)[0]])!r} has no row in the prior: "
                                 f"a Prior without ids has rows 0..{len(self) - 1}, row g for group id g "
                                 f"({int(missing.sum())} group id(s) outside)")
            return group_ids.astype(np.intp, copy=False)
        rows = np.fromiter((self._row.get(py(g), -1) for g in group_ids), dtype=np.intp, count=len(group_ids))
        if (rows < 0).any():
            g = py(group_ids[np.flatnonzero(rows < 0)[0]])
            raise ValueError(f"group id {g!r} has no row in the prior (its ids are {self.ids.dtype} ids such as "
                             f"{py(self.ids[0])!r}; {int((rows < 0).sum())} group id(s) missing)" if len(self)
                             else f"group id {g!r} has no row in the prior: the prior is empty")
        return rows

    @cached_property
    def _row(self) -> dict:
        return {value: j for j, value in enumerate(self.ids.tolist())}


def _frozen(array: np.ndarray) -> np.ndarray:
    array.setflags(write=False)
    return array


def _check_distinct(ids: np.ndarray) -> None:
    _, first, counts = np.unique(ids, return_index=True, return_counts=True)
    if (counts > 1).any():
        j = int(np.flatnonzero(counts > 1)[0])
        i = int(first[j])
        raise ValueError(f"prior ids[{i}] = {py(ids[i])!r} appears {int(counts[j])} times: each prompt has one row")
