"""The regime map's report: ``regimes.json``, ``regimes.md`` and ``regimes.png``."""

from __future__ import annotations

import json
from pathlib import Path

from v05.bench.regimes import FIXED_V05, REFERENCE
from v05.bench.report_files import write_documents

COLORS = {"RLOO": "tab:blue", "V0.5": "tab:red", "V0.5 oracle prior": "tab:orange", "V0.5 + OSLA": "tab:purple",
          "Dr. GRPO": "tab:brown", "V0.5 leave-one-out": "tab:pink", "V0.5 history prior": "tab:green",
          "EB batch": "tab:olive", "V0.5 calibrated": "tab:cyan", "OSLA 2 rounds": "tab:pink", "OSLA eb": "tab:brown",
          "Reinforce-Ada": "tab:green", "Knapsack": "tab:olive", "CurES": "tab:cyan", "Dynamic sampling": "tab:gray",
          "DAPO dynamic": "black"}
"""One colour a method (distinct within each preset of ``v05.bench.regimes.PRESETS``)."""


def write_report(report: dict, out: Path) -> dict[str, Path]:
    """Write regimes.json, regimes.md and regimes.png into ``out``; returns their paths."""
    json_path, md_path = write_documents(out, {"regimes.json": report, "regimes.md": markdown(report)}).values()
    paths = {"json": json_path, "markdown": md_path, "png": Path(out) / "regimes.png"}
    plot(report, paths["png"])
    return paths


def label(condition) -> str:
    k, stream, difficulty = condition
    return f"k={k}, {stream}, {difficulty}"


def interval(cell: dict | None, ref: str = "grpo") -> str:
    if cell is None:
        return "not run"
    low, high = (cell["ci_low"], cell["ci_high"]) if ref == "grpo" else (cell["ci_low_v05"], cell["ci_high_v05"])
    return f"{cell[f'diff_to_{ref}']:+.4f} [{low:+.4f}, {high:+.4f}]"


def markdown(report: dict) -> str:
    """Every cell: GRPO's held-out pass rate, each method's paired difference to it with its 95% CI; with V0.5
    and another method beside it, the differences to V0.5 too; with rounds recorded, the rounds per step."""
    st = report["settings"]
    methods = [m for m in st["methods"] if m != REFERENCE]
    conditions = [tuple(json.loads(key)) for key in report["start"]]
    cells = {(tuple(c["condition"]), c["method"]): c for c in report["cells"]}
    lines = ["# Regime map: held-out exact pass rate after equal rollouts", "",
             f"{st['total_rollouts']} rollouts per run, seeds {list(st['seeds'])}; score = mean exact pass rate of "
             "the final policy on the 256 held-out prompts; differences are paired by seed (same prompt stream and "
             "warm-up), mean [95% t-interval].", "",
             "| condition | start | extreme share | GRPO | " + " | ".join(f"{m} - GRPO" for m in methods) + " |",
             "|---|---:|---:|---:|" + "---:|" * len(methods)]
    for condition in conditions:
        start = report["start"][json.dumps(list(condition))]
        lines.append(f"| {label(condition)} | {start['held_out']:.3f} | {start['pool_extreme_share']:.2f} | "
                     f"{cells[condition, REFERENCE]['held_out']:.3f} | "
                     + " | ".join(interval(cells.get((condition, m))) for m in methods) + " |")
    lines += ["", "'start': the warm-up's held-out pass rate; 'extreme share': share of the training pool with a "
              "starting pass rate below 0.1 or above 0.9; 'not run': the method does not run on that stream.", ""]
    others = [m for m in methods if m != FIXED_V05]
    if FIXED_V05 in methods and others:
        lines += [f"## Paired difference to {FIXED_V05} at fixed k", "",
                  f"| condition | {FIXED_V05} | " + " | ".join(f"{m} - {FIXED_V05}" for m in others) + " |",
                  "|---|---:|" + "---:|" * len(others)]
        lines += [f"| {label(c)} | {cells[c, FIXED_V05]['held_out']:.3f} | "
                  + " | ".join(interval(cells.get((c, m)), "v05") for m in others) + " |" for c in conditions]
        lines.append("")
    if all("rounds" in c for c in report["cells"]):
        lines += ["## Generation rounds", "",
                  "Mean generation rounds per training step (a GPU's generation passes), and per run "
                  "[training steps per run]; means over seeds.", "",
                  "| condition | " + " | ".join([REFERENCE] + methods) + " |", "|---|" + "---:|" * (len(methods) + 1)]
        for c in conditions:
            row = [cells.get((c, m)) for m in [REFERENCE] + methods]
            lines.append(f"| {label(c)} | " + " | ".join(
                "not run" if x is None else f"{x['rounds_per_step']:.2f} ({x['rounds']:.0f} [{x['steps']:.0f}])"
                for x in row) + " |")
        lines.append("")
    return "\n".join(lines)


def plot(report: dict, path: Path) -> None:
    """Paired difference to GRPO with its 95% CI, one row per condition; when some method draws more than one
    generation round a step, a second panel with the mean rounds per step."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    st = report["settings"]
    methods = [m for m in st["methods"] if m != REFERENCE]
    conditions = [tuple(json.loads(k)) for k in report["start"]]
    cells = {(tuple(c["condition"]), c["method"]): c for c in report["cells"]}
    rounds = all("rounds" in c for c in report["cells"]) and any(c["rounds_per_step"] > 1 for c in report["cells"])
    height = 0.2 * len(conditions) * max(len(methods), 4) + 2
    fig, axes = plt.subplots(1, 2 if rounds else 1, figsize=(12 if rounds else 8, height), sharey=True,
                             squeeze=False, gridspec_kw={"width_ratios": [2, 1] if rounds else [1]})
    ax = axes[0, 0]
    step = 0.8 / max(1, len(methods))
    for i, condition in enumerate(conditions):
        for j, method in enumerate(methods):
            c = cells.get((condition, method))
            if c is None:
                continue
            y = i + (j - (len(methods) - 1) / 2) * step
            ax.errorbar(c["diff_to_grpo"], y, xerr=[[c["diff_to_grpo"] - c["ci_low"]], [c["ci_high"] - c["diff_to_grpo"]]],
                        fmt="o", color=COLORS.get(method, "grey"), label=method if i == 0 else None, capsize=2, ms=4)
            if rounds:
                axes[0, 1].plot(c["rounds_per_step"], y, "o", color=COLORS.get(method, "grey"), ms=4)
    ax.axvline(0, color="black", lw=0.8)
    ax.set_yticks(range(len(conditions)), [label(c) for c in conditions])
    ax.invert_yaxis()
    ax.set(xlabel="held-out exact pass rate minus GRPO's (paired by seed, 95% CI)",
           title=f"Regime map, {st['total_rollouts']} rollouts per run, {len(st['seeds'])} seeds")
    ax.grid(alpha=0.3, axis="x")
    ax.legend(fontsize=7, loc="best")
    if rounds:
        axes[0, 1].set(xlabel="rounds per step (mean over seeds)", title="Generation rounds per step")
        axes[0, 1].set_xlim(left=0)
        axes[0, 1].grid(alpha=0.3, axis="x")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
