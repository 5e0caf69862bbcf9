"""Evaluation reports: ``value.json``, ``value.md`` and a calibration plot (``calibration.png``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy.stats import norm

from v05.stats import COVERAGE_MIN_SAMPLES, observed_variance
from v05.bench.report_files import write_documents
from v05.bench.value_eval import HEAD

METRIC_ORDER = ("auc", "brier", "mse", "ece", "coverage_1sigma", "coverage_90")


def write_report(result: dict, out, *, title: str, meta: dict) -> dict[str, Path]:
    """Write value.json (the document), value.md and calibration.png into ``out``; returns their paths.

    ``meta`` is stored as given (e.g. the table, the training data and ``in_sample``: what of the evaluated
    policies and prompts the models were trained on, with a warning line when the figures are in sample).
    """
    groups = np.unique(result["policy"].astype(str))
    doc = {"title": title, **meta, "n_queries": int(len(result["pass_rate"])),
           "n_policies": int(len({g.split("#")[0] for g in groups})), "n_groups": int(len(groups)),
           "methods": result["methods"], "default": HEAD}
    json_path, md_path = write_documents(out, {"value.json": doc, "value.md": markdown_table(doc)}, indent=2, end="\n").values()
    paths = {"json": json_path, "markdown": md_path, "png": Path(out) / "calibration.png"}
    plot_calibration(result, paths["png"], title=title)
    return paths


def markdown_table(doc: dict) -> str:
    """One row per method; AUC is intra-context (per policy, then averaged); ``[lo, hi]`` are 95% intervals."""
    pooled = doc.get("n_groups", doc["n_policies"]) != doc["n_policies"]
    groups = f" ({doc['n_groups']} policy x run groups)" if pooled else ""
    lines = [f"# {doc['title']}", "", f"{doc['n_policies']} policies{groups}, {doc['n_queries']} query rows. "
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


SUMMARY_METRICS = ("auc", "brier", "ece")
INTERVAL_METHODS = ("value", "value_cold", "value_meta", "value_meta_cold", "value_surface", "value_cold_surface")


def write_summary(docs: dict, out, *, title: str) -> dict[str, Path]:
    """Several cells side by side: ``summary.json``, ``summary.md`` (one table per metric, methods x cells,
    plus interval coverage) and ``summary.png`` (AUC with 95% intervals); returns their paths. ``docs`` maps
    cell -> the ``value.json`` document of :func:`write_report`."""
    summary = {"title": title, "cells": {cell: {"methods": d["methods"], "in_sample": d.get("in_sample"),
                                                "n_queries": d["n_queries"], "n_policies": d["n_policies"]}
                                         for cell, d in docs.items()}}
    json_path, md_path = write_documents(out, {"summary.json": summary, "summary.md": summary_markdown(summary)}, indent=2,
                                         end="\n").values()
    paths = {"json": json_path, "markdown": md_path, "png": Path(out) / "summary.png"}
    plot_summary(summary, paths["png"])
    return paths


def summary_markdown(summary: dict) -> str:
    """Methods x cells for each metric of ``SUMMARY_METRICS``, then the coverage of the predictive intervals."""
    cells = list(summary["cells"])
    methods = list(dict.fromkeys(m for c in cells for m in summary["cells"][c]["methods"]))
    lines = [f"# {summary['title']}", ""]
    for metric in SUMMARY_METRICS:
        lines += [f"## {metric}", "", "| method | " + " | ".join(cells) + " |", "|---" * (len(cells) + 1) + "|"]
        for name in methods:
            cols = [format_metric(summary["cells"][c]["methods"].get(name, {}), metric) for c in cells]
            lines.append(f"| {name} | " + " | ".join(cols) + " |")
        lines.append("")
    lines += ["## coverage of the 1-sigma / 90% predictive intervals (rows from >= 5 samples)", "",
              "| method | " + " | ".join(cells) + " |", "|---" * (len(cells) + 1) + "|"]
    for name in INTERVAL_METHODS:
        cols = []
        for c in cells:
            m = summary["cells"][c]["methods"].get(name, {})
            cols.append(f"{m['coverage_1sigma']:.3f} / {m['coverage_90']:.3f}" if "coverage_90" in m else "-")
        lines.append(f"| {name} | " + " | ".join(cols) + " |")
    return "\n".join(lines) + "\n"


def plot_summary(summary: dict, path) -> None:
    """Intra-context AUC with its 95% bootstrap interval in every cell: cold methods (context only) on top,
    methods that also read other policies' outcomes below."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cells = list(summary["cells"])
    methods = list(dict.fromkeys(m for c in cells for m in summary["cells"][c]["methods"]))
    panels = [("cold: the policy's context only", [m for m in methods if m not in HISTORY_METHODS]),
              ("with history: other policies' outcomes too", [m for m in methods if m in HISTORY_METHODS])]
    fig, axes = plt.subplots(2, 1, figsize=(max(9, 1.4 * len(cells) + 4), 8.5), sharex=True)
    for ax, (label, names) in zip(axes, panels):
        width = 0.8 / max(len(names), 1)
        for k, name in enumerate(names):
            pts = [(i, summary["cells"][c]["methods"][name]) for i, c in enumerate(cells)
                   if name in summary["cells"][c]["methods"]]
            xs = [i - 0.4 + (k + 0.5) * width for i, _ in pts]
            ys = np.array([m["auc"] for _, m in pts])
            ci = np.array([m.get("auc_ci") or (m["auc"], m["auc"]) for _, m in pts])
            ax.errorbar(xs, ys, yerr=[ys - ci[:, 0], ci[:, 1] - ys], ls="none", capsize=2, label=name,
                        marker="o" if name.startswith("value") else "s", ms=7 if name in (HEAD, "value_cold") else 4)
        ax.axhline(0.5, color="k", lw=0.8, ls=":")
        ax.set(ylabel="intra-context AUC", title=label)
        ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.0, 0.5))
    axes[-1].set_xticks(range(len(cells)), cells, rotation=25, ha="right", fontsize=8)
    fig.suptitle(f"{summary['title']} (95% bootstrap intervals)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


HISTORY_METHODS = ("value", "value_meta", "value_surface", "history_mean")
"""Methods that read other policies' outcomes on the same prompts (the rest are cold)."""
