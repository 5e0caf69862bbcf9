"""Baseline predictors the value model is compared against, on the same splits.

Each takes the context (embeddings and pass rates of one policy) and the targets' embeddings, and returns
predicted pass rates in [0, 1]. ``history_mean`` also reads other policies' outcomes on the same prompts.
"""

from __future__ import annotations

import numpy as np


def context_mean(ctx_x, ctx_p, tgt_x) -> np.ndarray:
    """The policy's mean context pass rate, for every target."""
    return np.full(len(tgt_x), float(np.mean(ctx_p)))


def knn(ctx_x, ctx_p, tgt_x, *, k: int = 20) -> np.ndarray:
    """Mean pass rate of the ``k`` context prompts most cosine-similar to each target."""
    k = min(k, len(ctx_p))
    sim = tgt_x @ ctx_x.T  # (n_targets, n_context); embeddings are unit norm
    nearest = np.argpartition(-sim, k - 1, axis=1)[:, :k]
    return ctx_p[nearest].mean(axis=1)


def ridge(ctx_x, ctx_p, tgt_x, *, alpha: float = 10.0) -> np.ndarray:
    """Ridge regression of pass rate on embeddings, fitted on the context, clipped to [0, 1]."""
    from sklearn.linear_model import Ridge

    return np.clip(Ridge(alpha=alpha).fit(ctx_x, ctx_p).predict(tgt_x), 0.0, 1.0)


def logistic(ctx_x, ctx_p, tgt_x, *, c: float = 1.0) -> np.ndarray:
    """Logistic regression of ``pass_rate >= 0.5`` on embeddings, fitted on the context.

    A context with a single class has no decision boundary: every target then gets that class's share (0 or 1
    smoothed by one pseudo-observation of each class).
    """
    from sklearn.linear_model import LogisticRegression

    y = ctx_p >= 0.5
    if y.all() or not y.any():
        return np.full(len(tgt_x), (y.sum() + 1.0) / (len(y) + 2.0))
    return LogisticRegression(C=c, max_iter=1000).fit(ctx_x, y).predict_proba(tgt_x)[:, 1]


def history_mean(ctx_p, tgt_prompts, hist_prompts, hist_p) -> np.ndarray:
    """Mean pass rate of other policies on the same prompt text; the context mean where a prompt has none."""
    index = {t: i for i, t in enumerate(dict.fromkeys(tgt_prompts))}
    rows = np.array([index.get(t, -1) for t in hist_prompts], dtype=np.int64)
    keep = rows >= 0
    total = np.bincount(rows[keep], hist_p[keep], len(index))
    count = np.bincount(rows[keep], minlength=len(index))
    per_prompt = np.where(count > 0, total / np.maximum(count, 1), float(np.mean(ctx_p)))
    return per_prompt[[index[t] for t in tgt_prompts]]


CONTEXT_RIVALS = {"context_mean": context_mean, "knn": knn, "ridge": ridge, "logistic": logistic}
