"""Running moments across training steps (Welford), for the centre of ``eb_batch`` (``docs/method.md`` 3.11).

An estimator is a pure function of one batch, so a mean kept across steps (EBPO's global prior) lives with the
trainer: it keeps one :class:`RunningMoments`, feeds it each step's group means, and passes
``global_mean=moments.mean`` to ``eb_batch``.
"""

from __future__ import annotations

import numpy as np


class RunningMoments:
    """Count, mean and variance of every value seen so far, updated one batch at a time (Welford's method,
    numerically stable: no sum of squares is kept).

    Examples
    --------
    >>> m = RunningMoments()
    >>> m.update([0.0, 1.0]); m.update([0.5])
    >>> m.count, m.mean, round(m.var, 12)
    (3, 0.5, 0.25)
    """

    def __init__(self) -> None:
        self.count = 0
        self.mean = 0.0
        self._m2 = 0.0

    def update(self, values) -> None:
        """Add finite values (any shape) to the moments."""
        for x in np.asarray(values, dtype=np.float64).ravel().tolist():  # Python floats: exact, plain reprs
            if not np.isfinite(x):
                raise ValueError(f"RunningMoments.update: values must be finite numbers; got {x!r}")
            self.count += 1
            delta = x - self.mean
            self.mean += delta / self.count
            self._m2 += delta * (x - self.mean)

    @property
    def var(self) -> float:
        """Unbiased variance of the values seen (ddof = 1); NaN before two values."""
        return self._m2 / (self.count - 1) if self.count > 1 else float("nan")
