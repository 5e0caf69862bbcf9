"""Look-ups in a baseline-benchmark result shared by its reports: the priors in order, a fixed-k MSE at any
number of rollouts."""

from __future__ import annotations

import numpy as np


def order_priors(result: dict) -> list[str]:
    """The prior sources of a result, best prior (smallest MSE against the truth) first."""
    return sorted(result["prior_mse"], key=lambda name: result["prior_mse"][name])


def mean_at(result: dict, prior: str, rollouts: float, seed: int | None = None, estimator: str = "mean") -> float | None:
    """The plain mean's (or ``estimator``'s) MSE at a (fractional) number of rollouts, interpolated log-log between
    simulated k (pooled over seeds, or of one seed's run)."""
    pts = sorted((r["k"], r["mse"] if seed is None else r["seeds"]["mse"][seed]) for r in result["rows"]
                 if r["estimator"] == estimator and r["prior"] == prior and r["osla"] is None)
    pts = [p for p in pts if p[1] > 0]
    if len(pts) < 2 or not pts[0][0] <= rollouts <= pts[-1][0]:
        return None
    ks, mses = np.log([p[0] for p in pts]), np.log([p[1] for p in pts])
    return float(np.exp(np.interp(np.log(rollouts), ks, mses)))
