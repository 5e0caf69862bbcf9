"""Baseline predictors the value model is compared against, on the same splits.

Each reads one policy's context (its prompts and pass rates) and returns predicted pass rates in [0, 1] for
the target prompts; prompts come as :class:`Prompts` (unit-norm embeddings, log character lengths and surface
features).
``history_mean`` also reads other policies' outcomes on the same prompts.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

RIDGE_ALPHAS = tuple(np.logspace(-1, 4, 11))
"""Ridge strengths tried in context (efficient leave-one-out), fixed before any evaluation."""


@dataclass(frozen=True)
class Prompts:
    """Embeddings ``x`` (n, dim), unit norm, ``log_length`` (n,) = log(1 + characters) and ``surface`` (n, k),
    the surface features of :func:`v05.value.surface.surface_features`, of some prompts."""

    x: np.ndarray
    log_length: np.ndarray
    surface: np.ndarray


def context_mean(ctx: Prompts, ctx_p, tgt: Prompts) -> np.ndarray:
    """The policy's mean context pass rate, for every target."""
    return np.full(len(tgt.x), float(np.mean(ctx_p)))


def knn(ctx: Prompts, ctx_p, tgt: Prompts, *, k: int = 20) -> np.ndarray:
    """Mean pass rate of the ``k`` context prompts most cosine-similar to each target."""
    k = min(k, len(ctx_p))
    sim = tgt.x @ ctx.x.T  # (n_targets, n_context); embeddings are unit norm
    nearest = np.argpartition(-sim, k - 1, axis=1)[:, :k]
    return ctx_p[nearest].mean(axis=1)


def ridge(ctx: Prompts, ctx_p, tgt: Prompts) -> np.ndarray:
    """Ridge regression of pass rate on embeddings fitted on the context, its strength chosen there by
    leave-one-out error over ``RIDGE_ALPHAS``; clipped to [0, 1]."""
    from sklearn.linear_model import RidgeCV

    return np.clip(RidgeCV(alphas=RIDGE_ALPHAS).fit(ctx.x, ctx_p).predict(tgt.x), 0.0, 1.0)


def logistic(ctx: Prompts, ctx_p, tgt: Prompts, *, c: float = 1.0) -> np.ndarray:
    """Logistic regression of ``pass_rate >= 0.5`` on embeddings, fitted on the context.

    A context with a single class has no decision boundary: every target then gets that class's share (0 or 1
    smoothed by one pseudo-observation of each class).
    """
    from sklearn.linear_model import LogisticRegression

    y = ctx_p >= 0.5
    if y.all() or not y.any():
        return np.full(len(tgt.x), (y.sum() + 1.0) / (len(y) + 2.0))
    return LogisticRegression(C=c, max_iter=1000).fit(ctx.x, y).predict_proba(tgt.x)[:, 1]


def length(ctx: Prompts, ctx_p, tgt: Prompts) -> np.ndarray:
    """Least-squares line of pass rate on log prompt length, fitted on the context, clipped to [0, 1]
    (the context mean where the context's lengths do not vary)."""
    if np.ptp(ctx.log_length) == 0:
        return context_mean(ctx, ctx_p, tgt)
    slope, intercept = np.polyfit(ctx.log_length, ctx_p, 1)
    return np.clip(intercept + slope * tgt.log_length, 0.0, 1.0)


def surface(ctx: Prompts, ctx_p, tgt: Prompts) -> np.ndarray:
    """Ridge regression of pass rate on the surface features standardised over the context, its strength chosen
    there by leave-one-out error over ``RIDGE_ALPHAS``; clipped to [0, 1]. A feature constant over the context
    is left out."""
    from sklearn.linear_model import RidgeCV

    center, sd = ctx.surface.mean(axis=0), ctx.surface.std(axis=0)
    keep = sd > 1e-9
    if not keep.any():
        return context_mean(ctx, ctx_p, tgt)
    cs, ts = ((p.surface[:, keep] - center[keep]) / sd[keep] for p in (ctx, tgt))
    return np.clip(RidgeCV(alphas=RIDGE_ALPHAS).fit(cs, ctx_p).predict(ts), 0.0, 1.0)


def history_mean(ctx_p, tgt_prompts, hist_prompts, hist_p) -> np.ndarray:
    """Mean pass rate of other policies on the same prompt text; the context mean where a prompt has none."""
    index = {t: i for i, t in enumerate(dict.fromkeys(tgt_prompts))}
    rows = np.array([index.get(t, -1) for t in hist_prompts], dtype=np.int64)
    keep = rows >= 0
    total = np.bincount(rows[keep], hist_p[keep], len(index))
    count = np.bincount(rows[keep], minlength=len(index))
    per_prompt = np.where(count > 0, total / np.maximum(count, 1), float(np.mean(ctx_p)))
    return per_prompt[[index[t] for t in tgt_prompts]]


CONTEXT_RIVALS = {"context_mean": context_mean, "knn": knn, "ridge": ridge, "logistic": logistic, "length": length,
                  "surface": surface}
"""Rivals that read only the policy's context (no other policy's outcomes): the cold comparison."""
