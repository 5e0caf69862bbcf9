"""The one place V0.5 writes into verl's step metrics: every name it logs, with its meaning, and
:func:`record`, which the trainer and the sampler both go through (verl merges the sampler's dict into the
step's metrics, ``trainer_base.py`` ``_step_once``)."""

from __future__ import annotations

import math
from collections.abc import Mapping, MutableMapping

METRICS = {
    "v05/prior/mean": "mean prior of the trained sessions, as the estimator read it (the dataset column, or the "
                      "history prior)",
    "v05/rollouts/per_prompt": "mean rollouts per prompt after top-ups (osla)",
    "v05/rollouts/max_per_prompt": "most rollouts any prompt got (osla)",
    "v05/rollouts/top_up_rounds": "generation passes after the first (osla)",
    "v05/rollouts/top_up_rollouts": "rollouts added by top-ups (osla)",
    "v05/rollouts/topped_up_fraction": "fraction of prompts that got at least one top-up (osla)",
}
"""Every metric V0.5 logs in verl, name -> meaning (``docs/verl.md``, "Metrics")."""


def record(metrics: MutableMapping, values: Mapping[str, float]) -> MutableMapping:
    """Write ``values`` into verl's ``metrics`` dict and return it; each name must be in :data:`METRICS` and
    each value a finite number (a NaN in a dashboard is a silent wrong number)."""
    for name, value in values.items():
        if name not in METRICS:
            raise KeyError(f"{name!r} is not a V0.5 verl metric; known: {sorted(METRICS)}")
        number = float(value)
        if not math.isfinite(number):
            raise ValueError(f"metric {name} = {value!r}: must be a finite number")
        metrics[name] = number
    return metrics
