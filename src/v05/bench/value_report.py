"""Evaluation reports: ``value.json``, ``value.md`` and a calibration plot (``calibration.png``)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from scipy.stats import norm

from v05.bench.metrics import COVERAGE_MIN_SAMPLES, observed_variance
from v05.bench.value_eval import HEAD

METRIC_ORDER = ("auc", "brier", "mse", "ece", "coverage_1sigma", "coverage_90")


def write_report(result: dict, out, *, title: str, meta: dict) -> dict:
    """Write the three files into ``out`` and return the JSON document.

    ``meta`` is stored as given (e.g. the table, the training data and ``in_sample``: what of the evaluated
    policies and prompts the models were trained on, with a warning line when the figures are in sample).
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    doc = {"title": title, **meta, "n_queries": int(len(result["pass_rate"])),
           "n_policies": int(len(np.unique(result["policy"]))), "methods": result["methods"], "default": HEAD}
    (out / "value.json").write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    (out / "value.md").write_text(markdown_table(doc), encoding="utf-8")
    plot_calibration(result, out / "calibration.png", title=title)
    return doc


def markdown_table(doc: dict) -> str:
    """One row per method; AUC is intra-context (per policy, then averaged); ``[lo, hi]`` are 95% intervals."""
    lines = [f"# {doc['title']}", "", f"{doc['n_policies']} policies, {doc['n_queries']} query rows. "
             f"Default method: `{doc['default']}`."]
    warning = (doc.get("in_sample") or {}).get("warning")
    if warning:
        lines += ["", f"**Warning:** {warning}."]
    lines += ["", "| method | " + " | ".join(METRIC_ORDER) + " |", "|---" * (len(METRIC_ORDER) + 1) + "|"]
    for name, m in doc["methods"].items():
        lines.append(f"| {name} | " + " | ".join(format_metric(m, k) for k in METRIC_ORDER) + " |")
    return "\n".join(lines) + "\n"


def format_metric(metrics: dict, key: str) -> str:
    """``0.612 [0.590, 0.634]`` when an interval is known, ``0.612`` otherwise, empty when absent."""
    if key not in metrics:
        return ""
    ci = metrics.get(f"{key}_ci")
    return f"{metrics[key]:.3f}" + (f" [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else "")


def plot_calibration(result: dict, path, *, title: str) -> None:
    """Reliability diagram of every method, and interval coverage of the value model against nominal."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    p = result["pass_rate"]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.6))
    edges = np.linspace(0, 1, 11)
    for name, (mean, _) in result["predictions"].items():
        bins = np.clip(np.digitize(mean, edges) - 1, 0, 9)
        used = np.flatnonzero(np.bincount(bins, minlength=10) >= 5)
        xs = [mean[bins == b].mean() for b in used]
        ys = [p[bins == b].mean() for b in used]
        ax1.plot(xs, ys, "o-" if name == HEAD else ".--", lw=2.5 if name == HEAD else 1, label=name)
    ax1.plot([0, 1], [0, 1], "k:", lw=1)
    ax1.set(xlabel="predicted pass rate (bin mean)", ylabel="observed pass rate", title="reliability (bins of 0.1, >= 5 rows)",
            xlim=(0, 1), ylim=(0, 1))
    ax1.legend(fontsize=8)
    levels = np.linspace(0.05, 0.95, 19)
    k = result["n_samples"] >= COVERAGE_MIN_SAMPLES
    if not k.any():
        ax2.text(0.5, 0.5, f"no pass rates from >= {COVERAGE_MIN_SAMPLES} samples:\ncoverage of 0/1 outcomes is not meaningful",
                 ha="center", va="center", bbox={"facecolor": "white", "edgecolor": "none"})
    for name, (mean, var) in result["predictions"].items():
        if var is None or not k.any():
            continue
        sd = np.sqrt(observed_variance(mean[k], var[k], result["n_samples"][k]))
        z = np.abs(p[k] - mean[k]) / sd
        ax2.plot(levels, [np.mean(z <= norm.ppf(0.5 + lv / 2) + 1e-12) for lv in levels], "o-", label=name)
    ax2.plot([0, 1], [0, 1], "k:", lw=1)
    ax2.set(xlabel="nominal central-interval level", ylabel="fraction of observations inside",
            title=f"coverage of the predictive interval (rows with >= {COVERAGE_MIN_SAMPLES} samples)", xlim=(0, 1), ylim=(0, 1))
    if ax2.get_legend_handles_labels()[0]:
        ax2.legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
