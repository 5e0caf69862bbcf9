"""How much the estimated Bayes oracle depends on its prior bins (``docs/method.md`` section 9).

For the table's own prior (if any) and the value model's prior, the oracle's MSE at k = 2, 4, 8 with the
rule's bins (``rule``: one per value for a discrete prior, else round(n^(1/3)) equal-count bins) and with
equal-count bins at a quarter to four times round(n^(1/3)), on the same rollouts (every row of the table,
one seed). A limit that moves little with the bins is well estimated; where finer bins give a lower MSE,
the rule leaves information out.

    v05 bench oracle-bins --table ../shared/data/mmlupro_29models
"""

from __future__ import annotations

import numpy as np

from v05.bench.oracle import BinnedTruth, default_bins, oracle_baseline
from v05.bench.value_eval import bench_priors
from v05.data import PassRateTable

KS = (2, 4, 8)
FACTORS = (0.25, 0.5, 1, 2, 4)


def sweep(prior: np.ndarray, truth: np.ndarray, seed: int) -> list[str]:
    """Markdown rows: k, the rule's oracle MSE x 1e3, then the equal-count bins' MSE x 1e3."""
    rows, rng = np.arange(len(truth)), np.random.default_rng(seed)
    base = default_bins(len(truth))
    bins = [max(1, round(f * base)) for f in FACTORS]
    lines = ["| k | rule | " + " | ".join(f"{b} bins" for b in bins) + " |", "|---|---|" + "---|" * len(bins)]
    for k in KS:
        group = np.repeat(rows, k)
        rewards = (rng.random(len(group)) < truth[group]).astype(np.float64)
        mse = [np.mean((oracle_baseline(BinnedTruth.fit(prior, truth, n_bins=b), rows, rewards, group) - truth) ** 2)
               for b in [None] + bins]
        lines.append(f"| {k} | " + " | ".join(f"{1e3 * m:.2f}" for m in mse) + " |")
    return lines


def priors(table: PassRateTable, seed: int = 0) -> dict[str, np.ndarray]:
    """The table's own prior (if it has one) and the value model's (:func:`v05.bench.value_eval.bench_priors`)."""
    out = {} if table.prior is None else {"table": table.prior}
    out["value"] = bench_priors(table, seed=seed)[0]
    return out


def sweeps(table: PassRateTable, priors: dict[str, np.ndarray], name: str, seed: int = 0) -> str:
    """The sweep's Markdown table for each prior, headed by the table's ``name``, the prior and the rule's bins."""
    text = ""
    for prior_name, prior in priors.items():
        rule = BinnedTruth.fit(prior, table.pass_rate)
        text += (f"\n{name}, prior {prior_name}: oracle MSE x 1e3; rule = {rule.how}\n\n"
                 + "\n".join(sweep(prior, table.pass_rate, seed)) + "\n")
    return text
