"""The range rewards live in (:class:`RewardScale`): the estimators, the rollout planner and the TRL and verl
adapters map rewards to the unit scale [0, 1] with it (``docs/method.md`` 1, "Reward scales")."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from v05._validation import check_number, py

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
    def parse(cls, scale) -> RewardScale:
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
