"""How well a score predicts correctness: the verifier's P(Yes) per solution, beside the value model's
prediction per problem.

Both are scored the same way (:func:`quality`), at two levels:

- **solutions**: each sampled solution is an example, labelled by its correctness; the score is the
  verifier's P(Yes) of that solution, or the value model's prediction for its problem (the same for every
  solution of a problem). ``auc`` pools all solutions; ``auc_within`` averages the AUC inside each problem
  with both correct and wrong solutions: what re-ranking samples (Best-of-N, weighted voting) needs, and
  0.5 by construction for a prompt-level predictor. ``ece``, ``brier`` and the reliability bins compare
  the score with the correctness rate.
- **problems**: each problem is an example, its pass rate (over the N solutions) the target; the score is
  the mean P(Yes) of its solutions, or the value model's prediction. ``auc`` of pass rate >= 0.5 (the value
  model's convention), ``ece`` and ``mse`` against the pass rate.

The value model reads a context of the policy's outcomes on *other* problems: the problems are split into
folds, and each fold is predicted from the observed pass rates of the rest (cross-fitting), the shipped
value model frozen as in training.
"""

from __future__ import annotations

import numpy as np

from v05.stats import POSITIVE_AT, auc, ece, reliability

VALUE_FOLDS = 5
"""Folds of the value model's cross-fitting (fewer when there are fewer problems)."""


def quality(score: np.ndarray, correct: np.ndarray) -> dict:
    """Solution- and problem-level quality of ``score`` (P, N) in [0, 1] against ``correct`` (P, N)."""
    score, correct = np.asarray(score, dtype=np.float64), np.asarray(correct, dtype=bool)
    outcome = correct.astype(np.float64)
    mixed = [p for p in range(len(correct)) if 0 < correct[p].sum() < correct.shape[1]]
    within = [auc(score[p], correct[p]) for p in mixed]
    pass_rate, prompt_score = outcome.mean(1), score.mean(1)
    return {
        "solutions": {
            "auc": auc(score.ravel(), correct.ravel()),
            "auc_within": float(np.mean(within)) if within else float("nan"),
            "n_mixed_problems": len(mixed),
            "ece": ece(score.ravel(), outcome.ravel()),
            "brier": float(np.mean((score - outcome) ** 2)),
            "mean_score": float(score.mean()),
            "accuracy": float(outcome.mean()),
            "reliability": reliability(score.ravel(), outcome.ravel()),
        },
        "problems": {
            "auc": auc(prompt_score, pass_rate >= POSITIVE_AT),
            "ece": ece(prompt_score, pass_rate),
            "mse": float(np.mean((prompt_score - pass_rate) ** 2)),
        },
    }


def value_predictions(model, texts: list[str], pass_rate: np.ndarray, n_samples: int, *, seed: int = 0) -> np.ndarray:
    """Cross-fitted value-model predictions, shape (P,): each fold of problems predicted from a context of the
    observed pass rates of all the others (``n_samples`` solutions each).

    Raises
    ------
    ValueError
        With fewer than two problems (no context to read).
    """
    n = len(texts)
    if n < 2:
        raise ValueError("the value model needs at least two problems (one to predict, one as context)")
    folds = np.array_split(np.random.default_rng(seed).permutation(n), min(VALUE_FOLDS, n))
    out = np.zeros(n)
    for fold in folds:
        rest = np.setdiff1d(np.arange(n), fold)
        mean, _ = model.predict([texts[i] for i in rest], pass_rate[rest], [texts[i] for i in fold],
                                context_n_samples=np.full(len(rest), n_samples))
        out[fold] = np.clip(mean, 0.0, 1.0)
    return out
