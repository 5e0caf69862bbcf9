"""Meta-training of the head across policies: text-difficulty weights (torch) and the two variances.

``fit_text_difficulty`` learns ``f(x) = w . phi(x)`` with one free ability per training policy, using V0's
loss: ``(1 - rank_weight)`` x soft cross-entropy of ``sigmoid(a_j - f(x_i))`` against the observed pass rate,
plus ``rank_weight`` x a pairwise logistic ranking loss between prompts of the same policy, plus an L2
penalty. ``select_variances`` then picks ``tau2`` (text prior) and ``s2`` (interaction) by the marginal
likelihood of held-out rows in simulated context -> query episodes, using cross-fitted ``f`` so that the
text prior's error is measured out of sample.
"""

from __future__ import annotations

import itertools

import numpy as np
import torch

from v05.value.irt import fit_irt, logit_normal_loglik

TAU2_GRID = (0.5, 1.0, 2.0, 4.0, 8.0, 16.0)
S2_GRID = (0.1, 0.3, 1.0, 2.0, 4.0, 8.0)


def fit_text_difficulty(
    features: np.ndarray,
    policy: np.ndarray,
    prompt: np.ndarray,
    pass_rate: np.ndarray,
    row_weight: np.ndarray,
    *,
    ridge: float,
    rank_weight: float,
    n_pairs: int,
    rng: np.random.Generator,
    max_iter: int = 200,
) -> np.ndarray:
    """Weights ``w`` (n_features,) of the text difficulty ``f = features @ w`` (features standardised).

    Parameters
    ----------
    features : ndarray of shape (n_prompts, n_features)
    policy, prompt : ndarray of int, shape (n_rows,)
        Each row's policy index and prompt index (into ``features``).
    pass_rate : ndarray of shape (n_rows,)
    row_weight : ndarray of shape (n_rows,)
        Weight of each row in the cross-entropy, and of the pairs it leads in the ranking loss (e.g. to
        balance data sets of different sizes).
    n_pairs : int
        Ranking pairs drawn per policy (pairs whose pass rates differ).
    """
    first, second = _ranking_pairs(policy, pass_rate, n_pairs, rng)
    x = torch.as_tensor(features, dtype=torch.float64)
    pol, pro = torch.as_tensor(policy), torch.as_tensor(prompt)
    p = torch.as_tensor(pass_rate, dtype=torch.float64)
    rw = torch.as_tensor(row_weight / row_weight.mean(), dtype=torch.float64)
    pw = torch.as_tensor(row_weight[first] / row_weight[first].mean(), dtype=torch.float64) if len(first) else None
    w = torch.zeros(x.shape[1], dtype=torch.float64, requires_grad=True)
    a = torch.zeros(int(policy.max()) + 1, dtype=torch.float64, requires_grad=True)
    hi, lo = torch.as_tensor(prompt[first]), torch.as_tensor(prompt[second])
    opt = torch.optim.LBFGS([w, a], max_iter=max_iter, line_search_fn="strong_wolfe", tolerance_grad=1e-7)

    def closure():
        opt.zero_grad()
        f = x @ w  # (n_prompts,)
        logits = a[pol] - f[pro]  # (n_rows,)
        ce = torch.nn.functional.binary_cross_entropy_with_logits(logits, p, weight=rw)
        rank = (pw * torch.nn.functional.softplus(f[hi] - f[lo])).mean() if len(first) else logits.new_zeros(())
        loss = (1 - rank_weight) * ce + rank_weight * rank + 0.5 * ridge * (w @ w)
        loss.backward()
        return loss

    opt.step(closure)
    return w.detach().numpy()


def _ranking_pairs(policy, pass_rate, n_pairs, rng):
    """Row-index pairs ``(first, second)`` of the same policy with ``pass_rate[first] > pass_rate[second]``."""
    firsts, seconds = [], []
    for j in np.unique(policy):
        rows = np.flatnonzero(policy == j)
        i1, i2 = rng.choice(rows, n_pairs), rng.choice(rows, n_pairs)
        keep = pass_rate[i1] != pass_rate[i2]
        i1, i2 = i1[keep], i2[keep]
        swap = pass_rate[i1] < pass_rate[i2]
        firsts.append(np.where(swap, i2, i1))
        seconds.append(np.where(swap, i1, i2))
    return np.concatenate(firsts), np.concatenate(seconds)


def select_variances(
    policy: np.ndarray,
    prompt: np.ndarray,
    pass_rate: np.ndarray,
    n_samples: np.ndarray,
    f_oof: np.ndarray,
    source: np.ndarray,
    *,
    rng: np.random.Generator,
    episodes_per_source: int = 6,
    max_history: int = 60_000,
) -> tuple[float, float, float]:
    """Grid-search ``(tau2, s2)`` by held-out marginal log-likelihood; returns ``(tau2, s2, mean_loglik)``.

    An episode takes one policy, half its rows as context and half as queries; the other policies' rows of
    the same ``source`` (data set; at most ``max_history``, sampled) are history. ``f_oof`` are cross-fitted
    text difficulties. The criterion is the mean over sources of the mean log-likelihood per query row.
    """
    episodes = []
    for src in np.unique(source):
        for j in rng.permutation(np.unique(policy[source == src]))[:episodes_per_source]:
            rows = rng.permutation(np.flatnonzero(policy == j))
            others = np.flatnonzero((policy != j) & (source == src))
            if len(others) > max_history:
                others = rng.choice(others, max_history, replace=False)
            episodes.append((src, rows[: len(rows) // 2], rows[len(rows) // 2 :], others))
    best = (None, None, -np.inf)
    for tau2, s2 in itertools.product(TAU2_GRID, S2_GRID):
        per_source: dict = {}
        for src, context, queries, history in episodes:
            ll = episode_loglik(policy, prompt, pass_rate, n_samples, f_oof, context, queries, history, tau2, s2)
            total, count = per_source.get(src, (0.0, 0))
            per_source[src] = (total + ll.sum(), count + len(ll))
        score = float(np.mean([total / count for total, count in per_source.values()]))
        if score > best[2]:
            best = (tau2, s2, score)
    return best


def episode_loglik(policy, prompt, pass_rate, n_samples, f, context, queries, history, tau2, s2) -> np.ndarray:
    """Log marginal likelihood of each query row given context rows (policy 0) and history rows."""
    rows = np.concatenate([context, history])
    _, pol = np.unique(np.concatenate([[-1] * len(context), policy[history]]), return_inverse=True)
    fit = fit_irt(pol, prompt[rows], pass_rate[rows], n_samples[rows].astype(float), f, int(pol.max()) + 1, tau2=tau2, s2=s2)
    target = prompt[queries]
    mean = fit.a[0] - fit.d[target]
    var = fit.d_var[target] + fit.a_var[0] + s2
    return logit_normal_loglik(pass_rate[queries], n_samples[queries].astype(float), mean, var)
