"""The regime map's report: ``regimes.json``, ``regimes.md`` and ``regimes.png``."""

from __future__ import annotations

import json
from pathlib import Path

from v05.bench.regimes import REFERENCE
from v05.bench.report_files import write_documents

COLORS = {"RLOO": "tab:blue", "V0.5": "tab:red", "V0.5 oracle prior": "tab:orange", "V0.5 + OSLA": "tab:purple"}


def write_report(report: dict, out: Path) -> dict[str, Path]:
    """Write regimes.json, regimes.md and regimes.png into ``out``; returns their paths."""
    json_path, md_path = write_documents(out, {"regimes.json": report, "regimes.md": markdown(report)}).values()
    paths = {"json": json_path, "markdown": md_path, "png": Path(out) / "regimes.png"}
    plot(report, paths["png"])
    return paths


def label(condition) -> str:
    k, stream, difficulty = condition
    return f"k={k}, {stream}, {difficulty}"


def markdown(report: dict) -> str:
    """Every cell: GRPO's held-out pass rate, each method's paired difference to it with its 95% CI."""
    st = report["settings"]
    methods = [m for m in st["methods"] if m != REFERENCE]
    lines = ["# Regime map: held-out exact pass rate after equal rollouts", "",
             f"{st['total_rollouts']} rollouts per run, seeds {list(st['seeds'])}; score = mean exact pass rate of "
             "the final policy on the 256 held-out prompts; differences are paired by seed (same prompt stream and "
             "warm-up), mean [95% t-interval].", "",
             "| condition | start | extreme share | GRPO | " + " | ".join(f"{m} - GRPO" for m in methods) + " |",
             "|---|---:|---:|---:|" + "---:|" * len(methods)]
    cells = {(tuple(c["condition"]), c["method"]): c for c in report["cells"]}
    for key, start in report["start"].items():
        condition = tuple(json.loads(key))
        ref = cells[condition, REFERENCE]
        diffs = [cells[condition, m] for m in methods]
        lines.append(f"| {label(condition)} | {start['held_out']:.3f} | {start['pool_extreme_share']:.2f} | "
                     f"{ref['held_out']:.3f} | "
                     + " | ".join(f"{c['diff_to_grpo']:+.4f} [{c['ci_low']:+.4f}, {c['ci_high']:+.4f}]" for c in diffs) + " |")
    lines += ["", "'start': the warm-up's held-out pass rate; 'extreme share': share of the training pool with a "
              "starting pass rate below 0.1 or above 0.9.", ""]
    return "\n".join(lines)


def plot(report: dict, path: Path) -> None:
    """Paired difference to GRPO with its 95% CI, one row per condition."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    st = report["settings"]
    methods = [m for m in st["methods"] if m != REFERENCE]
    conditions = [tuple(json.loads(k)) for k in report["start"]]
    cells = {(tuple(c["condition"]), c["method"]): c for c in report["cells"]}
    fig, ax = plt.subplots(figsize=(8, 0.55 * len(conditions) * len(methods) / 2 + 1.5))
    step = 0.8 / max(1, len(methods))
    for i, condition in enumerate(conditions):
        for j, method in enumerate(methods):
            c = cells[condition, method]
            y = i + (j - (len(methods) - 1) / 2) * step
            ax.errorbar(c["diff_to_grpo"], y, xerr=[[c["diff_to_grpo"] - c["ci_low"]], [c["ci_high"] - c["diff_to_grpo"]]],
                        fmt="o", color=COLORS.get(method, "grey"), label=method if i == 0 else None, capsize=2, ms=4)
    ax.axvline(0, color="black", lw=0.8)
    ax.set_yticks(range(len(conditions)), [label(c) for c in conditions])
    ax.invert_yaxis()
    ax.set(xlabel="held-out exact pass rate minus GRPO's (paired by seed, 95% CI)",
           title=f"Regime map, {st['total_rollouts']} rollouts per run, {len(st['seeds'])} seeds")
    ax.grid(alpha=0.3, axis="x")
    ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
