"""The human side of a ``v05 eval`` report: the Markdown table and the two plots (accuracy against N on a
log2 axis; reliability of the verifier and of the value model)."""

from __future__ import annotations

from pathlib import Path

LABELS = {"majority": "majority vote", "best_of_n": "Best-of-N (verifier)", "weighted": "weighted vote (verifier)",
          "pass@n": "pass@N (ceiling)"}
COLORS = {"majority": "tab:blue", "best_of_n": "tab:orange", "weighted": "tab:red", "pass@n": "tab:gray"}


def _cell(mean: float, lo: float, hi: float) -> str:
    return f"{mean:.3f} [{lo:.3f}, {hi:.3f}]"


def _num(x) -> str:
    return "-" if x is None or x != x else f"{x:.3f}"


def markdown(report: dict) -> str:
    """``eval.md``: settings, the scaling table, the headline and the quality table."""
    s, pol, pr = report["settings"], report["policy"], report["problems"]
    names = [n for n in LABELS if n in report["strategies"]]
    lines = [
        f"# v05 eval: {pol['name']}", "",
        f"Policy: {pol['kind']} `{pol['name']}`" + (f" (step {pol['step']})" if pol.get("step") is not None else "")
        + f"; verifier: {'yes' if pol['has_verifier'] else 'no (majority vote and pass@N only)'}.",
        f"Problems: `{pr['source']}`, {pr['n']} problems, graded by `{pr['grader']}`; {s['n_max']} solutions each, "
        f"seed {s['seed']}. Accuracy at N is the expected accuracy over subsets of N of the sampled solutions "
        "(ties at random); [95% bootstrap interval over problems].", "",
        f"pass@1: {_cell(**report['pass@1'])}", "",
        "| N | " + " | ".join(LABELS[n] for n in names) + " |",
        "|---|" + "---|" * len(names),
    ]
    for i, n in enumerate(report["n"]):
        cells = [_cell(*(report["strategies"][name][k][i] for k in ("mean", "lo", "hi"))) for name in names]
        lines.append(f"| {n} | " + " | ".join(cells) + " |")
    h = report["headline"]
    lines += ["", f"Majority vote at N = {h['reference_n']}: {h['reference_accuracy']:.3f}."]
    for name in ("weighted", "best_of_n"):
        if "note" in h:
            lines.append(f"- {h['note']}.")
            break
        if name in h:
            got = h[name]
            lines.append(f"- {LABELS[name]} reaches it at N = {got['n']} ({got['ratio']:.0f}x fewer samples)."
                         if got["n"] is not None else f"- {LABELS[name]} does not reach it at any N <= {h['reference_n']}.")
    lines += ["", *quality_table(report), ""]
    return "\n".join(lines)


def quality_table(report: dict) -> list[str]:
    """The verifier and the value model side by side (solution- and problem-level metrics)."""
    rows = [("verifier P(Yes)", report["verifier"]), ("value model", report["value_model"])]
    lines = ["| predictor | AUC (solutions) | AUC within problems | ECE (solutions) | Brier | AUC (problems) "
             "| ECE (problems) | MSE (problems) |", "|---|---|---|---|---|---|---|---|"]
    for name, q in rows:
        if q is None:
            lines.append(f"| {name} | not scored | | | | | | |")
        elif "skipped" in q:
            lines.append(f"| {name} | skipped: {q['skipped']} | | | | | | |")
        else:
            a, b = q["solutions"], q["problems"]
            lines.append(f"| {name} | {_num(a['auc'])} | {_num(a['auc_within'])} ({a['n_mixed_problems']} problems) "
                         f"| {_num(a['ece'])} | {_num(a['brier'])} | {_num(b['auc'])} | {_num(b['ece'])} | {_num(b['mse'])} |")
    return lines


def plot_scaling(report: dict, path: Path, *, title: str | None = None) -> None:
    """Accuracy of every strategy against N (log2 axis) with its interval, and majority's level at n_max."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    draw_curves(ax, report["n"], report["strategies"])
    ax.axhline(report["headline"]["reference_accuracy"], color="tab:blue", ls=":", lw=1,
               label=f"majority at N = {report['headline']['reference_n']}")
    ax.set(title=title or f"Test-time scaling: {Path(report['policy']['name']).name}")
    _finish(fig, ax, path)


def draw_curves(ax, n: list[int], strategies: dict, *, suffix: str = "", style: str = "-") -> None:
    """One line with an interval band per strategy on a log2 N axis."""
    for name in LABELS:
        if name in strategies:
            c = strategies[name]
            ax.plot(n, c["mean"], style, marker="o", ms=3, color=COLORS[name], label=LABELS[name] + suffix)
            ax.fill_between(n, c["lo"], c["hi"], color=COLORS[name], alpha=0.12)
    ax.set_xscale("log", base=2)
    ax.set_xticks(n, [str(x) for x in n])
    ax.set(xlabel="N (solutions per problem)", ylabel="accuracy")


def plot_reliability(report: dict, path: Path) -> None:
    """Reliability of the verifier's P(Yes) and of the value model against solution correctness."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.2, 4.6))
    ax.plot([0, 1], [0, 1], color="black", lw=0.8, ls=":", label="perfect calibration")
    for name, key, color in (("verifier P(Yes)", "verifier", "tab:red"), ("value model", "value_model", "tab:green")):
        q = report[key]
        if q is None or "skipped" in q:
            continue
        r = q["solutions"]["reliability"]
        sizes = [20 + 200 * c / max(sum(r["count"]), 1) for c in r["count"]]
        ax.plot(r["pred"], r["outcome"], color=color, lw=1)
        ax.scatter(r["pred"], r["outcome"], s=sizes, color=color, alpha=0.7,
                   label=f"{name}: ECE {q['solutions']['ece']:.3f}, AUC {q['solutions']['auc']:.3f}")
    ax.set(xlim=(0, 1), ylim=(0, 1), xlabel="predicted probability of a correct solution",
           ylabel="observed share correct", title="Reliability (marker area = share of solutions)")
    _finish(fig, ax, path)


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _finish(fig, ax, path: Path) -> None:
    import matplotlib.pyplot as plt

    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
