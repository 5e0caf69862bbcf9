"""Reports of the baseline-MSE benchmark: JSON for machines, Markdown and PNG plots for people."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

PLOTTED = ("mean", "rloo", "prior", "v05_paper", "v05_bernoulli", "v05_prior_var", "v05_eb", "v05_eb_loo")
"""Estimators drawn in the plots (the table lists them all), each with one colour in every panel."""
COLOURS = {est: f"C{i}" for i, est in enumerate(PLOTTED)}


def _style(est: str, default: str) -> dict:
    return {"color": COLOURS[est], "ls": "--" if est.endswith("_loo") or est == "rloo" else "-",
            "lw": 2.6 if est in ("mean", default) else 1.3, "marker": "o", "ms": 3, "label": est}


def _grid(n: int, width: float, height: float):
    cols = min(3, n)
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(width * cols, height * rows), squeeze=False, sharey=True)
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    return fig, axes


def _finish(fig, axes, path: Path) -> None:
    """One legend for all panels (each estimator once), layout, save, free."""
    handles = {}
    for ax in axes.flat:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(lab, h)
    ordered = [lab for lab in PLOTTED if lab in handles]
    fig.legend([handles[lab] for lab in ordered], ordered, loc="lower center", ncol=len(ordered), fontsize=8,
               frameon=False)
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _index(result: dict) -> dict:
    return {(r["estimator"], r["k"], r["prior"], r["osla"] or False): r for r in result["rows"]}


def mean_at(result: dict, prior: str, rollouts: float) -> float | None:
    """The plain mean's MSE at a (fractional) number of rollouts, interpolated log-log between simulated k."""
    pts = sorted((r["k"], r["mse"]) for r in result["rows"]
                 if r["estimator"] == "mean" and r["prior"] == prior and r["osla"] is None and r["mse"] > 0)
    if len(pts) < 2 or not pts[0][0] <= rollouts <= pts[-1][0]:
        return None
    ks, mses = np.log([p[0] for p in pts]), np.log([p[1] for p in pts])
    return float(np.exp(np.interp(np.log(rollouts), ks, mses)))


def _order_priors(result: dict) -> list[str]:
    return sorted(result["prior_mse"], key=lambda name: result["prior_mse"][name])


def glance(result: dict, k: int) -> list[str]:
    """One table: every estimator (rows) against every prior (columns) at one k, MSE x 1e3 (ratio to mean)."""
    idx = _index(result)
    priors = _order_priors(result)
    estimators = sorted({r["estimator"] for r in result["rows"]}, key=lambda e: (e != "mean", e))
    lines = ["| estimator | " + " | ".join(f"{p} ({1e3 * result['prior_mse'][p]:.1f})" for p in priors) + " |",
             "|---|" + "---|" * len(priors)]
    for est in estimators:
        cells = []
        for p in priors:
            row, ref = idx.get((est, k, p, False)), idx.get(("mean", k, p, False))
            cells.append("-" if row is None or ref is None else f"{1e3 * row['mse']:.2f} ({row['mse'] / ref['mse']:.2f})")
        if any(c != "-" for c in cells):
            name = f"**{est}** (default)" if est == result["default"] else est
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
    worst = [(idx[(result["default"], kk, p, False)]["mse"] / idx[("mean", kk, p, False)]["mse"], kk, p)
             for (e, kk, p, o) in idx if e == result["default"] and not o and ("mean", kk, p, False) in idx]
    if worst:
        ratio, kk, p = max(worst)
        lines += ["", f"Worst ratio of the default `{result['default']}` to the mean over all priors and k: "
                  f"{ratio:.3f} (k={kk}, prior {p})."]
    return lines


def markdown(result: dict, title: str) -> str:
    """Per prior source, MSE x 1e3 of every estimator at every k, with its ratio to the plain mean."""
    idx = _index(result)
    ks = result["config"]["ks"]
    estimators = sorted({r["estimator"] for r in result["rows"]}, key=lambda e: (e != "mean", e))
    lines = [f"# {title}", "",
             f"Baseline MSE against the true pass rate (x 1e3; ratio to the plain mean `mean` in brackets), "
             f"{result['config']['seeds']} seed(s), {result['config']['n_rows']} prompts, batches of "
             f"{result['config']['batch_size']}. Default estimator `v05` = `{result['default']}`.", ""]
    at = 4 if 4 in ks else ks[len(ks) // 2]
    lines += [f"## At a glance: k = {at}, every prior (prior MSE x 1e3 in the header)", ""] + glance(result, at) + [""]
    for prior in _order_priors(result):
        lines += [f"## prior: {prior} (prior MSE x 1e3 = {1e3 * result['prior_mse'][prior]:.1f})", "",
                  "| estimator | " + " | ".join(f"k={k}" for k in ks) + " |",
                  "|---|" + "---|" * len(ks)]
        for est in estimators:
            cells = []
            for k in ks:
                row, ref = idx.get((est, k, prior, False)), idx.get(("mean", k, prior, False))
                if row is None:
                    cells.append("-")
                else:
                    ratio = f" ({row['mse'] / ref['mse']:.2f})" if ref and ref["mse"] > 0 else ""
                    cells.append(f"{1e3 * row['mse']:.2f}{ratio}")
            if any(c != "-" for c in cells):
                name = f"**{est}**" if est == result["default"] else est
                lines.append(f"| {name} | " + " | ".join(cells) + " |")
        lines.append("")
    for rule, cfg in result["config"]["osla"].items():
        lines += [f"## OSLA rule '{rule}' (k_init={cfg['k_init']}, k_max={cfg['k_max']}, c={cfg['cost']})", "",
                  "| prior | estimator | mean rollouts | MSE x 1e3 | mean at equal rollouts | ratio |",
                  "|---|---|---|---|---|---|"]
        rows = [r for r in result["rows"] if r["osla"] == rule]
        for r in sorted(rows, key=lambda r: (result["prior_mse"][r["prior"]], r["estimator"])):
            same = mean_at(result, r["prior"], r["mean_rollouts"])
            ref = "-" if same is None else f"{1e3 * same:.2f} | {r['mse'] / same:.2f}"
            lines.append(f"| {r['prior']} | {r['estimator']} | {r['mean_rollouts']:.2f} | {1e3 * r['mse']:.2f} | "
                         f"{ref} |" + (" - |" if same is None else ""))
        lines.append("")
    if result["undefined"]:
        lines += ["Undefined (left out): " + "; ".join(result["undefined"]), ""]
    return "\n".join(lines)


def plot_mse_vs_k(result: dict, path: Path) -> None:
    """One panel per prior source: MSE against k (log-log) for the plotted estimators."""
    idx = _index(result)
    priors = _order_priors(result)
    ks = result["config"]["ks"]
    fig, axes = _grid(len(priors), 4.6, 3.6)
    for ax, prior in zip(axes.flat, priors):
        for est in PLOTTED:
            pts = [(k, idx[(est, k, prior, False)]["mse"]) for k in ks if (est, k, prior, False) in idx]
            if pts:
                ax.plot(*zip(*pts), **_style(est, result["default"]))
        ax.set(xscale="log", yscale="log", title=f"prior {prior} (MSE {result['prior_mse'][prior]:.3f})",
               xlabel="rollouts per prompt k")
        ax.set_xticks(ks, [str(k) for k in ks])
        ax.grid(alpha=0.3, which="both")
    for ax in axes[:, 0]:
        ax.set_ylabel("baseline MSE vs true pass rate")
    _finish(fig, axes, path)


def plot_mse_vs_prior(result: dict, path: Path) -> None:
    """One panel per k: each fused estimator's MSE relative to the plain mean against the prior's MSE."""
    idx = _index(result)
    priors = _order_priors(result)
    ks = [k for k in result["config"]["ks"] if any(("mean", k, p, False) in idx for p in priors)]
    fig, axes = _grid(len(ks), 4.4, 3.6)
    for ax, k in zip(axes.flat, ks):
        for est in PLOTTED:
            if est == "mean":
                continue
            pts = [(result["prior_mse"][p], idx[(est, k, p, False)]["mse"] / idx[("mean", k, p, False)]["mse"])
                   for p in priors if (est, k, p, False) in idx and idx[("mean", k, p, False)]["mse"] > 0]
            if pts:
                ax.plot(*zip(*pts), **_style(est, result["default"]))
        ax.axhline(1.0, color="black", lw=1)
        ax.set(xscale="log", yscale="log", title=f"k = {k}", xlabel="prior MSE (worse prior ->)")
        ax.grid(alpha=0.3, which="both")
    for ax in axes[:, 0]:
        ax.set_ylabel("MSE / MSE of the plain mean")
    _finish(fig, axes, path)


def write(result: dict, out: Path, title: str) -> dict[str, Path]:
    """Write baseline.json, baseline.md, mse_vs_k.png and mse_vs_prior.png under ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    paths = {"json": out / "baseline.json", "markdown": out / "baseline.md",
             "mse_vs_k": out / "mse_vs_k.png", "mse_vs_prior": out / "mse_vs_prior.png"}
    paths["json"].write_text(json.dumps(result, indent=1))
    paths["markdown"].write_text(markdown(result, title))
    plot_mse_vs_k(result, paths["mse_vs_k"])
    plot_mse_vs_prior(result, paths["mse_vs_prior"])
    return paths
