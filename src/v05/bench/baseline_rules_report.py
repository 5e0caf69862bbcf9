"""The report of every rollout rule at equal compute (``v05 bench baseline --rules``): Markdown tables, the
winners per regime, and ``rules.png``.

Intervals are 95% Student-t intervals over seeds; ratios are to the plain mean's and to the Bayes oracle's MSE at
the same rollouts per prompt (interpolated log-log between the simulated fixed k, :func:`mean_at`). The winner
of a metric in a regime (prior, k_init) is the best pooled value among the rules and ``fixed``; a rule ties with
it when the 95% interval of its per-seed differences to it (paired: common random numbers) contains 0.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from v05.bench.baseline_lookup import mean_at
from v05.bench.baseline_lookup import order_priors as _order_priors
from v05.bench.baseline_rules import FIXED
from v05.bench.oracle import ORACLE
from v05.stats import ci95

REFERENCE = "mean"
METRICS = {"mse": "lowest", "mixed": "highest", "rounds": "lowest"}
"""What wins for each decided metric."""


def _rows(result: dict, estimator: str, prior: str, k_init: int) -> list[dict]:
    """``fixed`` and every rule at ``k_init``, in the order they were run."""
    return [r for r in result["rule_rows"] if r["estimator"] == estimator and r["prior"] == prior
            and (r["k_init"] == k_init or r["rule"] == FIXED)]


def _fused(result: dict) -> list[str]:
    return sorted({r["estimator"] for r in result["rule_rows"]} - {REFERENCE}, key=lambda e: e != result["default"])


def ratio_at(result: dict, row: dict, estimator: str = REFERENCE) -> tuple[float | None, float | None]:
    """Row's MSE over ``estimator``'s fixed-k MSE at the row's mean rollouts, pooled and its per-seed 95% interval."""
    same = mean_at(result, row["prior"], row["mean_rollouts"], estimator=estimator)
    if same is None or same <= 0:
        return None, None
    refs = [mean_at(result, row["prior"], n, seed=s, estimator=estimator)
            for s, n in enumerate(row["seeds"]["mean_rollouts"])]
    ok = all(r is not None and r > 0 for r in refs)
    return row["mse"] / same, ci95(np.asarray(row["seeds"]["mse"]) / np.asarray(refs)) if ok else None


def winners(rows: list[dict], metric: str) -> list[str]:
    """The rules that win ``metric`` (:data:`METRICS`) among ``rows``: the best first, then every rule tied with it."""
    sign = -1.0 if METRICS[metric] == "highest" else 1.0
    best = min(rows, key=lambda r: sign * r[metric])
    tied = []
    for r in [best] + [r for r in rows if r is not best]:
        diff = sign * (np.asarray(r["seeds"][metric]) - np.asarray(best["seeds"][metric]))
        half = ci95(diff)
        if r is best or (half is not None and diff.mean() - half <= 0) or (half is None and diff.mean() <= 0):
            tied.append(r["rule"])
    return tied


def _winners(rows: list[dict], metric: str) -> str:
    """The winners of a cell, the best in bold."""
    first, *rest = winners(rows, metric)
    return ", ".join([f"**{first}**"] + rest)


def _num(value: float | None, half: float | None, digits: int = 2, scale: float = 1.0) -> str:
    if value is None:
        return "-"
    return f"{scale * value:.{digits}f}" + ("" if half is None else f" ± {scale * half:.{digits}f}")


def rules_markdown(result: dict) -> list[str]:
    """Per prior: every rule (and ``fixed``) at every k_init with its rollouts, rounds, share of groups with a
    gradient, and each estimator's MSE and ratios; then the winners per regime."""
    cfg = result["config"]["rules"]
    fused = _fused(result)
    lines = [f"## Every rollout rule at equal compute ({cfg['budget_per_prompt']} rollouts per prompt)", "",
             f"Every batch has the budget {cfg['budget_per_prompt']} x its prompts, first round included; every rule "
             f"starts with k_init rollouts a prompt (k_init = {', '.join(map(str, cfg['k_inits']))}), its other options at "
             f"their defaults; `{FIXED}` draws {cfg['budget_per_prompt']} for every prompt in one round. All draw from one "
             "table of rewards per batch (common random numbers). rollouts: mean per prompt actually drawn; rounds: "
             "generation rounds per batch; gradient: share of groups whose rewards are not all equal; MSE x 1e3 ± the "
             "95% interval over seeds; / mean, / oracle: the MSE over the plain mean's and the Bayes oracle's at the "
             "same rollouts per prompt (fixed k, interpolated), ± the per-seed interval.", ""]
    for prior in _order_priors(result):
        if not any(r["prior"] == prior for r in result["rule_rows"]):
            continue
        head = "| k_init | rule | rollouts | rounds | gradient |"
        for est in fused + [REFERENCE]:
            head += f" {est} MSE | / mean | / oracle |"
        lines += [f"### prior: {prior} (prior MSE x 1e3 = {1e3 * result['prior_mse'][prior]:.1f})", "", head,
                  "|---|---|---|---|---|" + "---|---|---|" * (len(fused) + 1)]
        for k in cfg["k_inits"]:
            by_est = {est: {r["rule"]: r for r in _rows(result, est, prior, k)} for est in fused + [REFERENCE]}
            for rule in by_est[REFERENCE]:
                if rule == FIXED and k != cfg["k_inits"][0]:
                    continue
                a = by_est[REFERENCE][rule]
                cells = [("-" if rule == FIXED else str(k)), rule, f"{a['mean_rollouts']:.2f}", f"{a['rounds']:.2f}",
                         _num(a["mixed"], ci95(a["seeds"]["mixed"]), 3)]
                for est in fused + [REFERENCE]:
                    row = by_est[est].get(rule)
                    if row is None:
                        cells += ["-", "-", "-"]
                        continue
                    cells += [_num(row["mse"], row["mse_ci95"], scale=1e3), _num(*ratio_at(result, row)),
                              _num(*ratio_at(result, row, ORACLE))]
                lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    return lines + winner_table(result)


def winner_table(result: dict) -> list[str]:
    """Per regime (prior, k_init): the winners of each metric (:func:`winners`)."""
    cfg = result["config"]["rules"]
    fused = _fused(result)
    heads = [f"lowest {est} MSE" for est in fused + [REFERENCE]] + ["most groups with a gradient", "fewest rounds"]
    lines = ["### Which rule wins, per regime", "",
             "The best pooled value among the rules and `fixed` (bold), then every rule whose per-seed differences to "
             "it have a 95% interval containing 0 (tied).", "",
             "| prior | k_init | " + " | ".join(heads) + " |", "|---|---|" + "---|" * len(heads)]
    for prior in _order_priors(result):
        for k in cfg["k_inits"]:
            cells = []
            for est in fused + [REFERENCE]:
                rows = _rows(result, est, prior, k)
                cells.append(_winners(rows, "mse") if rows else "-")
            rows = _rows(result, REFERENCE, prior, k)
            if not rows:
                continue
            cells += [_winners(rows, "mixed"), _winners(rows, "rounds")]
            lines.append(f"| {prior} | {k} | " + " | ".join(cells) + " |")
    return lines + [""]


RATIO_TICKS = (0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.2, 1.5, 2.0, 3.0, 4.0, 6.0, 8.0)
COARSE_TICKS = (0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0, 8.0)
"""Ticks of a ratio axis spanning more than a factor 3 (the fine ones would overlap)."""


def _ratio_axis(ax) -> None:
    """A log axis of ratios with plain tick labels and a line at 1."""
    from matplotlib.ticker import FixedLocator, NullLocator

    ax.set_yscale("log")
    ax.axhline(1.0, color="black", lw=0.8)
    low, high = ax.get_ylim()
    ticks = COARSE_TICKS if high / low > 3 else RATIO_TICKS
    ax.yaxis.set_major_locator(FixedLocator([t for t in ticks if low <= t <= high]))
    ax.yaxis.set_minor_locator(NullLocator())
    ax.yaxis.set_major_formatter(lambda y, _: f"{y:g}")


def plot_rules(result: dict, path: Path) -> None:
    """Columns: k_init; rows: the default estimator's and the plain mean's MSE over the same estimator's under
    ``fixed`` (below 1: the rule beats drawing the budget evenly), the share of groups with a gradient and the
    generation rounds per batch, against the prior (worse to the right), a marker per rule with its 95% interval
    over seeds (of the per-seed ratios for the MSE)."""
    from matplotlib.figure import Figure

    cfg = result["config"]["rules"]
    k_inits = cfg["k_inits"]
    priors = [p for p in _order_priors(result) if any(r["prior"] == p for r in result["rule_rows"])]
    rules = [FIXED] + cfg["rules"]
    ests = _fused(result)[:1] + [REFERENCE]
    panels = [(f"{e} MSE / {e} MSE of {FIXED}", e, "mse") for e in ests] + [
        ("share of groups with a gradient", REFERENCE, "mixed"), ("generation rounds per batch", REFERENCE, "rounds")]
    fig = Figure(figsize=(5.2 * len(k_inits), 2.9 * len(panels)))
    axes = fig.subplots(len(panels), len(k_inits), squeeze=False, sharex=True)
    width = 0.8 / len(rules)
    for col, k in enumerate(k_inits):
        for row, (label, est, metric) in enumerate(panels):
            ax = axes[row, col]
            for i, rule in enumerate(rules):
                xs, ys, errs = [], [], []
                for x, prior in enumerate(priors):
                    cell = {r["rule"]: r for r in _rows(result, est, prior, k)}
                    if rule not in cell:
                        continue
                    values = np.asarray(cell[rule]["seeds"][metric])
                    pooled = cell[rule][metric]
                    if metric == "mse":
                        pooled, values = pooled / cell[FIXED]["mse"], values / np.asarray(cell[FIXED]["seeds"]["mse"])
                    xs.append(x - 0.4 + width * (i + 0.5))
                    ys.append(pooled)
                    errs.append(ci95(values) or 0.0)
                style = {"color": "black", "marker": "s"} if rule == FIXED else {"color": f"C{i % 10}", "marker": "o"}
                ax.errorbar(xs, ys, yerr=errs, ls="none", ms=4, capsize=2, label=rule, **style)
            ax.set_title(f"k_init = {k}: {label}", fontsize=9)
            if metric == "mse":
                _ratio_axis(ax)
            ax.grid(alpha=0.3, axis="y")
            ax.set_xticks(range(len(priors)), [f"{p}\n({1e3 * result['prior_mse'][p]:.1f})" for p in priors],
                          fontsize=8)
    for ax in axes[-1]:
        ax.set_xlabel("prior (prior MSE x 1e3; worse to the right)", fontsize=8)
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=min(len(labels), 4), fontsize=8, frameon=False)
    fig.suptitle(f"Rollout rules at equal compute: {cfg['budget_per_prompt']} rollouts per prompt "
                 f"(error bars: 95% over seeds)", fontsize=10)
    fig.tight_layout(rect=(0, 0.03 + 0.015 * (-(-len(labels) // 4)), 1, 0.98))
    fig.savefig(path, dpi=110)
