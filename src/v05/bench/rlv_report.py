"""The RL^V comparison's report: per (method, budget), pass@1, the scaling curves, the efficiency headline
and the verifier's and value model's quality, each over seeds with a 95% interval; the verifier methods
paired by seed with the same method without the verifier loss. Writes ``rlv.json``, ``summary.json``,
``rlv.md`` and the PNG plots (:func:`write_report`).

Intervals: a cell is the mean over seeds of the per-seed values (each per-seed value itself an average over
the held-out problems and their sampled solutions) ± the half-width of the 95% Student-t interval of that
mean (``v05.stats.ci95``); a paired difference is the same over the per-seed differences.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from v05.stats import ci95, reliability
from v05.bench.report_files import write_documents
from v05.bench.rlv import BASE_OF, METHOD_LIST, METHODS
from v05.evaluate.report import COLORS, LABELS

STRATEGIES = ("majority", "weighted", "best_of_n", "pass@n")


def _stat(values) -> dict:
    values = [float(v) for v in values]
    return {"mean": float(np.mean(values)), "ci": ci95(values), "values": values}


def _fmt(stat: dict, digits: int = 3) -> str:
    ci = stat["ci"]
    return f"{stat['mean']:.{digits}f}" + ("" if ci is None else f" ± {ci:.{digits}f}")


def first_n_reaching(n: list[int], values: list[float], target: float) -> int | None:
    """The smallest N whose value reaches ``target`` (None if none does)."""
    return next((int(x) for x, v in zip(n, values) if v >= target - 1e-12), None)


def _runs(report: dict, method: str, budget: int) -> list[dict]:
    return sorted((r for r in report["runs"] if r["method"] == method and r["budget"] == budget), key=lambda r: r["seed"])


def summarise(report: dict) -> dict:
    """Per budget and method: pass@1, curves, headline, quality; per verifier method: paired with its base."""
    out: dict = {}
    for budget in report["settings"]["budgets"]:
        cell = out.setdefault(str(budget), {})
        for m in METHOD_LIST:
            runs = _runs(report, m.label, budget)
            cell[m.label] = _method_summary(runs)
        for label, base in BASE_OF.items():
            cell[label]["vs_base"] = _paired(_runs(report, label, budget), _runs(report, base, budget))
    return out


def _method_summary(runs: list[dict]) -> dict:
    n = runs[0]["eval"]["n"]
    strategies = [s for s in STRATEGIES if s in runs[0]["eval"]["strategies"]]
    curves = {s: [_stat([r["eval"]["strategies"][s]["mean"][i] for r in runs]) for i in range(len(n))] for s in strategies}
    out = {"seeds": [r["seed"] for r in runs], "pass@1": _stat([r["eval"]["pass@1"]["mean"] for r in runs]),
           "train_final_accuracy": _stat([r["train_final_accuracy"] for r in runs]), "n": n, "curves": curves,
           "cpu_seconds": _stat([r["cpu_seconds"] for r in runs])}
    if "weighted" in strategies:
        out["weighted_minus_majority"] = [_stat([r["eval"]["strategies"]["weighted"]["mean"][i]
                                                 - r["eval"]["strategies"]["majority"]["mean"][i] for r in runs])
                                          for i in range(len(n))]
        out["headline"] = {s: [r["eval"]["headline"][s]["n"] for r in runs] for s in ("weighted", "best_of_n")}
        out["verifier"] = _quality([r["eval"]["verifier"] for r in runs])
    values = [r["eval"]["value_model"] for r in runs]
    out["value_model"] = _quality(values) if all(v and "skipped" not in v for v in values) else None
    return out


def _quality(reports: list[dict]) -> dict:
    return {level: {k: _stat([q[level][k] for q in reports]) for k in keys}
            for level, keys in (("solutions", ("auc", "auc_within", "ece", "brier")), ("problems", ("auc", "ece", "mse")))}


def _paired(runs: list[dict], base: list[dict]) -> dict:
    """Verifier method against its base, seed by seed: pass@1 difference, and the N at which the verifier
    model's weighted vote (and Best-of-N) reaches the base model's majority vote at n_max (the paper's
    comparison)."""
    assert [r["seed"] for r in runs] == [r["seed"] for r in base]
    n = runs[0]["eval"]["n"]
    reach = {s: [first_n_reaching(n, r["eval"]["strategies"][s]["mean"], b["eval"]["strategies"]["majority"]["mean"][-1])
                 for r, b in zip(runs, base)] for s in ("weighted", "best_of_n")}
    return {"pass@1_diff": _stat([r["eval"]["pass@1"]["mean"] - b["eval"]["pass@1"]["mean"] for r, b in zip(runs, base)]),
            "majority_at_nmax_diff": _stat([r["eval"]["strategies"]["majority"]["mean"][-1]
                                            - b["eval"]["strategies"]["majority"]["mean"][-1] for r, b in zip(runs, base)]),
            "weighted_at_nmax_minus_base_majority": _stat([r["eval"]["strategies"]["weighted"]["mean"][-1]
                                                           - b["eval"]["strategies"]["majority"]["mean"][-1]
                                                           for r, b in zip(runs, base)]),
            "reach_base_majority": reach}


def _reach(ns: list, n_max: int) -> str:
    got = [x for x in ns if x is not None]
    text = ", ".join("-" if x is None else str(x) for x in ns)
    return f"{text} (reached in {len(got)} of {len(ns)} seeds" + (
        f"; median ratio {n_max / float(np.median(got)):.1f}x)" if got else ")")


def markdown(report: dict, summary: dict) -> str:
    """``rlv.md``: every cell, with the per-seed values behind the headline."""
    st = report["settings"]
    n_max = st["n_max"]
    lines = ["# RL^V on the built-in task: GRPO and V0.5, with and without the verifier loss", "",
             f"Seeds {st['seeds']}; budgets {st['budgets']} rollouts per run; every run from the same warm-up; "
             f"evaluation: {n_max} solutions per held-out problem (256), mean over seeds ± 95% t-interval.", "",
             "## pass@1 (does the verifier loss hurt reasoning?)", "",
             "| budget | " + " | ".join(m.label for m in METHOD_LIST) + " | GRPO: verifier - base | V0.5: verifier - base |",
             "|---|" + "---|" * (len(METHOD_LIST) + 2)]
    for budget, cell in summary.items():
        diffs = [_fmt(cell[label]["vs_base"]["pass@1_diff"]) for label in BASE_OF]
        lines.append(f"| {budget} | " + " | ".join(_fmt(cell[m.label]["pass@1"]) for m in METHOD_LIST) + " | "
                     + " | ".join(diffs) + " |")
    for budget, cell in summary.items():
        lines += ["", f"## Test-time scaling at {budget} rollouts", ""]
        for m in METHOD_LIST:
            s = cell[m.label]
            names = [x for x in STRATEGIES if x in s["curves"]]
            lines += [f"**{m.label}**", "", "| N | " + " | ".join(LABELS[x] for x in names) + " |",
                      "|---|" + "---|" * len(names)]
            lines += [f"| {n} | " + " | ".join(_fmt(s["curves"][x][i]) for x in names) + " |" for i, n in enumerate(s["n"])]
            lines.append("")
        lines += [f"### Efficiency headline at {budget} rollouts", "",
                  f"Smallest N (per seed) at which a strategy reaches majority voting's accuracy at N = {n_max}: of the "
                  "same model, and of the same method trained without the verifier loss (the paper's comparison).", "",
                  "| method | strategy | vs own majority@N_max | vs base method's majority@N_max | "
                  "weighted - majority at N_max | weighted@N_max - base majority@N_max |", "|---|---|---|---|---|---|"]
        for label in BASE_OF:
            s, vb = cell[label], cell[label]["vs_base"]
            for strat in ("weighted", "best_of_n"):
                lines.append(f"| {label} | {LABELS[strat]} | {_reach(s['headline'][strat], n_max)} "
                             f"| {_reach(vb['reach_base_majority'][strat], n_max)} "
                             f"| {_fmt(s['weighted_minus_majority'][-1]) if strat == 'weighted' else ''} "
                             f"| {_fmt(vb['weighted_at_nmax_minus_base_majority']) if strat == 'weighted' else ''} |")
        lines += ["", f"### Verifier and value model at {budget} rollouts", "",
                  "| policy | predictor | AUC (solutions) | AUC within problems | ECE (solutions) | Brier "
                  "| AUC (problems) | ECE (problems) | MSE (problems) |", "|---|---|---|---|---|---|---|---|---|"]
        for m in METHOD_LIST:
            for name, key in (("verifier P(Yes)", "verifier"), ("value model", "value_model")):
                q = cell[m.label].get(key)
                if q:
                    a, b = q["solutions"], q["problems"]
                    within = _fmt(a["auc_within"]) if key == "verifier" else "n/a"  # one score per problem
                    lines.append(f"| {m.label} | {name} | {_fmt(a['auc'])} | {within} | {_fmt(a['ece'])} "
                                 f"| {_fmt(a['brier'])} | {_fmt(b['auc'])} | {_fmt(b['ece'])} | {_fmt(b['mse'])} |")
    lines += ["", "Per-seed pass@1:", ""]
    for budget, cell in summary.items():
        for m in METHOD_LIST:
            lines.append(f"- {budget} {m.label}: " + ", ".join(f"{v:.3f}" for v in cell[m.label]["pass@1"]["values"]))
    lines += ["", "Plots: " + ", ".join(f"scaling_r{b}.png" for b in summary) + ", pass1.png, reliability.png.", ""]
    return "\n".join(lines)


def write_report(report: dict, out: Path) -> dict[str, Path]:
    """Write ``rlv.json`` (the report), ``summary.json`` (:func:`summarise`), ``rlv.md`` and the plots into
    ``out``; returns their paths."""
    out = Path(out)
    summary = summarise(report)
    files = write_documents(out, {"rlv.json": report, "summary.json": summary, "rlv.md": markdown(report, summary)})
    paths = {"json": files["rlv.json"], "summary": files["summary.json"], "markdown": files["rlv.md"]}
    for budget in summary:
        paths[f"scaling_r{budget}"] = out / f"scaling_r{budget}.png"
        plot_scaling(summary, budget, report["settings"]["n_max"], paths[f"scaling_r{budget}"])
    paths["pass1"] = out / "pass1.png"
    plot_pass1(summary, paths["pass1"])
    paths["reliability"] = out / "reliability.png"
    plot_reliability(report, out, paths["reliability"])
    return paths


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_scaling(summary: dict, budget: str, n_max: int, path: Path) -> None:
    """Two panels (GRPO, V0.5): the verifier model's strategies and the base model's majority vote, mean ± CI."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharey=True)
    for ax, (label, base) in zip(axes, BASE_OF.items()):
        s, b = summary[budget][label], summary[budget][base]
        for name in STRATEGIES:
            _band(ax, s["n"], s["curves"][name], COLORS[name], LABELS[name] + f" ({label})")
        _band(ax, b["n"], b["curves"]["majority"], "black", f"majority vote ({base}, no verifier)", style="--")
        ax.set_xscale("log", base=2)
        ax.set_xticks(s["n"], [str(x) for x in s["n"]])
        ax.set(xlabel="N (solutions per problem)", title=f"{label} vs {base}, {budget} rollouts")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    axes[0].set_ylabel(f"held-out accuracy (mean ± 95% CI over {len(s['seeds'])} seeds)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _band(ax, n, stats, color, label, style="-"):
    mean = np.array([x["mean"] for x in stats])
    ci = np.array([x["ci"] or 0.0 for x in stats])
    ax.plot(n, mean, style, marker="o", ms=3, color=color, label=label)
    ax.fill_between(n, mean - ci, mean + ci, color=color, alpha=0.12)


def plot_pass1(summary: dict, path: Path) -> None:
    """pass@1 per method and budget: every seed, and the mean ± CI."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 4))
    budgets = list(summary)
    width = 0.8 / len(METHOD_LIST)
    for j, m in enumerate(METHOD_LIST):
        for i, budget in enumerate(budgets):
            s = summary[budget][m.label]["pass@1"]
            x = i + (j - (len(METHOD_LIST) - 1) / 2) * width
            ax.scatter([x] * len(s["values"]), s["values"], s=10, color=m.color, alpha=0.5)
            ax.errorbar(x, s["mean"], yerr=s["ci"] or 0, fmt="o", color=m.color, capsize=3,
                        label=m.label if i == 0 else None)
    ax.set_xticks(range(len(budgets)), [f"{b} rollouts" for b in budgets])
    ax.set(ylabel="pass@1 on the held-out set", title="pass@1 with and without the verifier loss (dots: seeds)")
    ax.grid(alpha=0.3, axis="y")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_reliability(report: dict, out: Path, path: Path) -> None:
    """At the largest budget, every seed's solutions pooled: the verifier methods' P(Yes) and the value model's
    prediction against correctness."""
    plt = _pyplot()
    budget = max(report["settings"]["budgets"])
    fig, ax = plt.subplots(figsize=(5.4, 4.8))
    ax.plot([0, 1], [0, 1], color="black", lw=0.8, ls=":", label="perfect calibration")
    for label in BASE_OF:
        m = METHODS[label]
        pools = [json.loads((out / "evals" / r["name"] / "eval.json").read_text()) for r in _runs(report, label, budget)]
        correct = np.concatenate([np.ravel(p["pool"]["correct"]) for p in pools])
        score = np.concatenate([np.ravel(p["pool"]["score"]) for p in pools])
        value = np.concatenate([np.repeat([q["value"] for q in p["per_problem"]], np.shape(p["pool"]["correct"])[1])
                                for p in pools if p["per_problem"][0]["value"] is not None] or [np.zeros(0)])
        for name, pred, style, marker in (("verifier P(Yes)", score, "-", "o"), ("value model", value, "--", "s")):
            if len(pred) == len(correct):
                r = reliability(pred, correct)
                ax.plot(r["pred"], r["outcome"], style, marker=marker, ms=4, color=m.color, label=f"{label}: {name}")
    ax.set(xlim=(0, 1), ylim=(0, 1), xlabel="predicted probability of a correct solution", ylabel="observed share correct",
           title=f"Reliability at {budget} rollouts (all seeds pooled)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
