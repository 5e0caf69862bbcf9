"""A prior without a value model: each prompt's own past outcomes as a Beta posterior around a Beta prior
fitted on the whole history by moments (the idea of DBB's and CurES's per-prompt Beta baselines;
docs/method.md, "History prior").

The fit (:func:`fit_beta_prior`), over the P prompts of the history, each with s_p successes in n_p tries
(s_p = sum of pass rate x rollouts over its rows) and rate r_p = s_p / n_p:

* mean m = mean of r_p over prompts;
* spread of the true rates v = var(r_p) - mean(m (1 - m) / n_p) (the observed spread minus the binomial
  noise of n_p tries at the mean);
* strength kappa = alpha + beta = m (1 - m) / v - 1, kept in [2, max(2, P)]: never weaker than Beta(1, 1)'s,
  never worth more than one try per prompt it was fitted on. All-equal rates (v <= 0) give the upper end; a
  single prompt gives kappa = 2 around its rate;
* m is kept in [0.5 / kappa, 1 - 0.5 / kappa], so alpha, beta >= 0.5 even when every rate is 0 or 1;
* no history at all: Beta(1, 1) (mean 1/2, variance 1/12).

Each prompt's prior is then Beta(alpha + s_p, beta + n_p - s_p): its mean and its variance; a prompt with no
row (cold) gets the fitted Beta(alpha, beta) itself.

**Cold batch** (:meth:`HistoryPrior.cold_start`: a trainer whose history is still empty, once the batch's first
round is scored): the batch-level prior is fitted on that first round, cross-fitted so that no prompt's prior
reads its own outcomes: the prompts with a scored rollout are split into two halves by position and each half
gets the Beta fitted on the other half; prompts without one get the Beta fitted on all of them; with fewer
than two such prompts, Beta(1, 1).
"""

from __future__ import annotations

import bisect

import numpy as np

from v05.baselines import Prior
from v05.value.prior import OutcomeHistory

KAPPA_MIN = 2.0
"""Weakest prior strength alpha + beta: Beta(1, 1)'s."""


def fit_beta_prior(successes: np.ndarray, tries: np.ndarray) -> tuple[float, float]:
    """(alpha, beta) fitted by moments on prompts' successes out of tries (rules in the module docstring)."""
    successes, tries = np.asarray(successes, float), np.asarray(tries, float)
    if len(tries) == 0:
        return 1.0, 1.0
    rates = successes / tries
    m = float(rates.mean())
    v = float(rates.var() - (m * (1.0 - m) / tries).mean())
    kappa_max = max(KAPPA_MIN, float(len(tries)))
    kappa = kappa_max if v <= 0 else min(max(m * (1.0 - m) / v - 1.0, KAPPA_MIN), kappa_max)
    m = min(max(m, 0.5 / kappa), 1.0 - 0.5 / kappa)
    return m * kappa, (1.0 - m) * kappa


def beta_moments(alpha, beta) -> tuple[np.ndarray, np.ndarray]:
    """Mean and variance of Beta(alpha, beta)."""
    alpha, beta = np.asarray(alpha, float), np.asarray(beta, float)
    total = alpha + beta
    return alpha / total, alpha * beta / (total ** 2 * (total + 1.0))


class HistoryPrior:
    """Each prompt's Beta posterior from its own outcomes in an :class:`OutcomeHistory` (the rows before
    ``step``), around the Beta prior fitted on all of them; same interface as
    :class:`~v05.value.ValueModelPrior`. Stateless: everything it reads is the (checkpointed) history."""

    def predict(self, history: OutcomeHistory, step: int, targets: list[str]) -> Prior:
        """Posterior mean and variance of each target's pass rate (cold targets: the fitted prior)."""
        end = bisect.bisect_left(history.step, step)  # rows are in step order
        prompts = np.array(history.prompt[:end], dtype=object)
        tries = np.asarray(history.n_samples[:end], float)
        wins = np.asarray(history.pass_rate[:end], float) * tries
        names, index = np.unique(prompts, return_inverse=True)
        s = np.bincount(index, weights=wins, minlength=len(names))
        n = np.bincount(index, weights=tries, minlength=len(names))
        alpha0, beta0 = fit_beta_prior(s, n)
        row = {name: j for j, name in enumerate(names.tolist())}
        pick = np.array([row.get(t, -1) for t in targets], dtype=int)
        s_t = np.where(pick >= 0, np.append(s, 0.0)[pick], 0.0)  # pick == -1 (cold) reads the appended 0
        n_t = np.where(pick >= 0, np.append(n, 0.0)[pick], 0.0)
        mean, var = beta_moments(alpha0 + s_t, beta0 + n_t - s_t)
        return Prior(mean, var)

    def cold_start(self, pass_rate, counts) -> Prior:
        """The prior of a batch met with an empty history, from its own first round (``pass_rate`` in [0, 1] and
        ``counts`` scored rollouts, one entry per prompt of the batch): cross-fitted batch-level Beta priors
        (module docstring), or Beta(1, 1) with fewer than two prompts scored."""
        pass_rate, counts = np.asarray(pass_rate, float), np.asarray(counts, int)
        mean, var = beta_moments(np.ones(len(counts)), np.ones(len(counts)))
        for targets, fitted_on in cross_fit_splits(counts):
            alpha0, beta0 = fit_beta_prior(pass_rate[fitted_on] * counts[fitted_on], counts[fitted_on])
            mean[targets], var[targets] = beta_moments(alpha0, beta0)
        return Prior(mean, var)


def cross_fit_splits(counts) -> list[tuple[np.ndarray, np.ndarray]]:
    """How a cold batch is cross-fitted on its own first round: (targets, prompts fitted on) pairs. The scored
    prompts (``counts > 0``) alternate into two halves, each predicted from the other; unscored prompts from all
    scored ones. No pair with fewer than two scored prompts (the caller keeps its uninformed prior).

    >>> [(t.tolist(), f.tolist()) for t, f in cross_fit_splits([2, 0, 2, 2])]
    [([0, 3], [2]), ([2], [0, 3]), ([1], [0, 2, 3])]
    """
    counts = np.asarray(counts)
    seen = np.flatnonzero(counts > 0)
    if len(seen) < 2:
        return []
    halves = (seen[0::2], seen[1::2])
    pairs = [(halves[0], halves[1]), (halves[1], halves[0]), (np.flatnonzero(counts <= 0), seen)]
    return [(t, f) for t, f in pairs if len(t)]
