"""The Bayes oracle: the physical limit of a baseline that sees one prompt's prior and its rollouts.

For a prompt with prior V and s successes in k Bernoulli rollouts, the oracle's baseline is the posterior mean
of its pass rate under the *true* distribution of pass rates given the prior, which the simulation knows:

    b = sum_j w_j(V) u_j^(s+1) (1 - u_j)^(k-s) / sum_j w_j(V) u_j^s (1 - u_j)^(k-s)

over the table's distinct pass rates u_j, with w_j(V) the weight of u_j given the prior (a :class:`TruthModel`).
No trainer can run it (it needs the truth's distribution); among all baselines that use the prompt's prior
and rollouts it has the lowest MSE, so the benchmark reports it as ``oracle``, the limit. ``docs/method.md``
section 9 says how each truth model is built.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import xlogy

ORACLE = "oracle"
"""The oracle's name in the benchmark's rows, tables and plots (never a registered estimator)."""
LOGIT_CLIP = 1e-3
"""Pass rates are clipped to [1e-3, 1 - 1e-3] before the logit (as the synthetic priors are drawn)."""


def clipped_logit(p: np.ndarray) -> np.ndarray:
    """logit of p clipped to [LOGIT_CLIP, 1 - LOGIT_CLIP] (finite for every pass rate)."""
    p = np.clip(p, LOGIT_CLIP, 1.0 - LOGIT_CLIP)
    return np.log(p / (1.0 - p))


@dataclass(frozen=True)
class LogitNoiseTruth:
    """The exact truth model of a synthetic prior: logit(V) = +-logit(truth) + N(0, sd^2).

    A prior is mirrored (logit(V) = -logit(truth) + noise: confidently wrong) with probability ``fraction``,
    else it is the truth plus noise; the truth is a draw from the table's pass rates. Given the prior, the
    weight of candidate u_j is n_j ((1 - f) phi((L - l_j)/sd) + f phi((L + l_j)/sd)), with n_j its count in
    the table, L the prior's logit and l_j u_j's clipped logit. ``sd = 0`` keeps the candidates whose clipped
    logit equals +-L.

    Attributes
    ----------
    values, counts : ndarray of shape (J,)
        The table's distinct pass rates and how many rows hold each.
    prior_logit : ndarray of shape (n_rows,)
        The logit each row's prior was drawn with (before the sigmoid: exact even where V rounds to 0 or 1).
    sd, fraction : float
    """

    values: np.ndarray
    counts: np.ndarray
    prior_logit: np.ndarray
    sd: float
    fraction: float = 0.0

    @property
    def how(self) -> str:
        mirrored = f", {self.fraction:g} of the priors mirrored" if self.fraction else ""
        return f"exact: logit-normal noise, sd {self.sd:g}{mirrored}, truth drawn from the table's pass rates"

    def weights(self, rows: np.ndarray) -> np.ndarray:
        """Unnormalised weights of the candidate truths given each row's prior, shape (len(rows), J)."""
        big_l = self.prior_logit[rows][:, None]  # (n, 1)
        truth_l = clipped_logit(self.values)[None, :]  # (1, J)
        if self.sd == 0:
            like = (1 - self.fraction) * (truth_l == big_l) + self.fraction * (truth_l == -big_l)
            return self.counts * like
        with np.errstate(divide="ignore"):
            log_good = np.log1p(-self.fraction) - 0.5 * ((big_l - truth_l) / self.sd) ** 2
            log_bad = np.log(self.fraction) - 0.5 * ((big_l + truth_l) / self.sd) ** 2
        log_w = np.logaddexp(log_good, log_bad)
        return self.counts * np.exp(log_w - log_w.max(axis=1, keepdims=True))


def prior_bins(prior: np.ndarray, n_bins: int) -> np.ndarray:
    """Equal-count bins of the prior, ties together: bin = floor(n_bins * (rows with a smaller prior) / n)."""
    below = np.searchsorted(np.sort(prior), prior, side="left")
    return np.minimum(n_bins * below // len(prior), n_bins - 1)


def default_bins(n_rows: int) -> int:
    """The number of equal-count prior bins of :class:`BinnedTruth` for a prior with many distinct values:
    round(n^(1/3)) (the histogram rule), at least 1."""
    return max(1, round(n_rows ** (1 / 3)))


def value_bins(prior: np.ndarray) -> np.ndarray | None:
    """One bin per distinct prior value when there are at most sqrt(n) of them (a discrete prior, such as
    another policy's observed pass rate: the exact conditional given the prior), else None."""
    values, inverse = np.unique(prior, return_inverse=True)
    return inverse.reshape(-1) if len(values) <= np.sqrt(len(prior)) else None


@dataclass(frozen=True)
class BinnedTruth:
    """A truth model estimated from the table, for priors whose relation to the truth is not known in closed
    form (the table's own prior, the value model's).

    Rows are put in bins of their prior: one per distinct value for a discrete prior (:func:`value_bins`),
    else equal-count bins (:func:`prior_bins`, :func:`default_bins` of them). The distribution of a row's
    truth given its prior is the distribution of the truths of the *other* rows in its bin
    (leave-own-row-out), plus one pseudo-row spread as the whole table's pass rates (so that no rollouts are
    impossible). The rule was checked on the shared tables (``v05 bench oracle-bins``): on the value priors
    the oracle's MSE moves by at most 0.3 x 1e-3 from half to twice round(n^(1/3)) bins, and a discrete prior
    binned coarser than its values gives a looser limit.

    Attributes
    ----------
    values : ndarray of shape (J,)
    bin_counts : ndarray of shape (n_bins, J)
        Rows of each bin holding each candidate truth.
    row_bin, row_value : ndarray of shape (n_rows,)
        Each row's bin and the index of its own truth in ``values``.
    marginal : ndarray of shape (J,)
        The table's distribution of pass rates (sums to 1).
    """

    values: np.ndarray
    bin_counts: np.ndarray
    row_bin: np.ndarray
    row_value: np.ndarray
    marginal: np.ndarray
    by_value: bool = False

    @classmethod
    def fit(cls, prior: np.ndarray, truth: np.ndarray, n_bins: int | None = None) -> "BinnedTruth":
        """Bin ``prior`` (by the rule above unless ``n_bins`` equal-count bins are asked for) and count the
        truths per bin."""
        row_bin = value_bins(prior) if n_bins is None else None
        by_value = row_bin is not None
        if not by_value:
            n_bins = default_bins(len(prior)) if n_bins is None else n_bins
            row_bin = prior_bins(prior, n_bins)
        values, row_value, counts = np.unique(truth, return_inverse=True, return_counts=True)
        bin_counts = np.zeros((int(row_bin.max()) + 1, len(values)))
        np.add.at(bin_counts, (row_bin, row_value.reshape(-1)), 1.0)
        return cls(values, bin_counts, row_bin, row_value.reshape(-1), counts / len(truth), by_value)

    @property
    def how(self) -> str:
        bins = (f"the other rows with the same prior ({len(self.bin_counts)} values)" if self.by_value else
                f"the other rows in the row's prior bin ({len(self.bin_counts)} equal-count bins)")
        return f"estimated: the truths of {bins} plus one pseudo-row of the table's pass rates"

    def weights(self, rows: np.ndarray) -> np.ndarray:
        """Unnormalised weights of the candidate truths given each row's prior, shape (len(rows), J)."""
        w = self.bin_counts[self.row_bin[rows]]  # a copy, (n, J)
        w[np.arange(len(rows)), self.row_value[rows]] -= 1.0  # leave the row itself out (its count is >= 1)
        return w + self.marginal


TruthModel = LogitNoiseTruth | BinnedTruth


def posterior_mean(values: np.ndarray, weights: np.ndarray, successes: np.ndarray, k: np.ndarray) -> np.ndarray:
    """Posterior mean of the pass rate given ``successes`` in ``k`` Bernoulli rollouts, per row.

    Parameters
    ----------
    values : ndarray of shape (J,)
        Candidate pass rates.
    weights : ndarray of shape (n, J)
        Their (unnormalised) prior weights for each row.
    successes, k : ndarray of shape (n,)

    Raises
    ------
    ValueError
        A row whose rollouts are impossible under its weights (every candidate with weight has likelihood 0).

    Examples
    --------
    Two equally likely pass rates, 3 successes in 4 rollouts: (0.2 x 0.0064 + 0.8 x 0.1024) / 0.1088.

    >>> posterior_mean(np.array([0.2, 0.8]), np.array([[1.0, 1.0]]), np.array([3]), np.array([4])).round(6)
    array([0.764706])
    """
    s, k = np.asarray(successes, float)[:, None], np.asarray(k, float)[:, None]
    with np.errstate(divide="ignore"):
        log_post = np.log(weights) + xlogy(s, values) + xlogy(k - s, 1.0 - values)  # (n, J)
    top = log_post.max(axis=1, keepdims=True)
    if not np.isfinite(top).all():
        i = int(np.flatnonzero(~np.isfinite(top[:, 0]))[0])
        raise ValueError(f"row {i}: {int(s[i, 0])} successes in {int(k[i, 0])} rollouts are impossible under its "
                         "truth model (every candidate pass rate with weight has likelihood 0)")
    post = np.exp(log_post - top)
    return (post * values).sum(axis=1) / post.sum(axis=1)


def oracle_baseline(model: TruthModel, rows: np.ndarray, rewards: np.ndarray, group: np.ndarray) -> np.ndarray:
    """The oracle's baseline for each prompt of one batch, shape (len(rows),).

    ``rows`` are the batch's table rows; ``rewards`` (0/1) and ``group`` (positions in ``rows``) its rollouts.
    """
    successes = np.bincount(group, weights=rewards, minlength=len(rows))
    k = np.bincount(group, minlength=len(rows))
    return posterior_mean(model.values, model.weights(rows), successes, k)
