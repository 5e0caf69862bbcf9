"""The gradient benchmark's report: ``gradient.json``, ``gradient.md``, ``gradient.png`` (fixed k) and
``gradient_rules.png`` (every rollout rule against fixed k at the same mean rollouts)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from v05.bench.gradient import FLOOR, NO_BASELINE, OPTIMAL
from v05.bench.report_files import write_documents

PLOTTED = ((FLOOR, None, "b = true pass rate (pass-rate floor)", "black", "-"),
           (OPTIMAL, None, "b = variance-optimal constant (oracle)", "tab:green", "-"),
           (NO_BASELINE, None, "no baseline", "grey", ":"),
           ("rloo", None, "RLOO (= mean baseline, rescaled)", "tab:blue", "-"),
           ("grpo", None, "GRPO", "tab:cyan", "--"),
           ("v05_eb", "value", "V0.5 (v05_eb), value-model prior", "tab:red", "-"),
           ("v05_eb", "oracle", "V0.5, oracle prior", "tab:orange", "--"),
           ("v05_eb", "halluc", "V0.5, hallucination prior", "tab:purple", "-."),
           ("v05_eb_mix", "halluc", "v05_eb_mix, hallucination prior", "tab:pink", ":"),
           ("eb_batch", None, "eb_batch (value-free EB)", "tab:olive", "--"),
           ("v05_eb", "history(8)", "V0.5, history prior (8 earlier rollouts)", "tab:brown", "--"))
"""(estimator, prior name prefix, label, colour, line style) of the plotted rows."""


def write_report(report: dict, out: Path) -> dict[str, Path]:
    """Write gradient.json, gradient.md, gradient.png and (with rule cells) gradient_rules.png into ``out``;
    returns their paths."""
    json_path, md_path = write_documents(out, {"gradient.json": report, "gradient.md": markdown(report)}).values()
    paths = {"json": json_path, "markdown": md_path, "png": Path(out) / "gradient.png"}
    plot(report, paths["png"])
    if any("rule" in c for snap in report["snapshots"] for c in snap["cells"]):
        paths["rules_png"] = Path(out) / "gradient_rules.png"
        plot_rules(report, paths["rules_png"])
    return paths


def _f(x, digits=3) -> str:
    return "n/a" if x is None else f"{x:.{digits}f}"


def fixed_k(cells: list[dict]) -> list[dict]:
    """The cells at a fixed k (not OSLA's nor a rule's allocations)."""
    return [c for c in cells if "osla" not in c and "rule" not in c]


def _interval(r: dict) -> str:
    return f"{r['ratio']:.3f} [{r['low']:.3f}, {r['high']:.3f}]"


def _rows(cells: list[dict]) -> dict[tuple[str, str | None], dict[int, dict]]:
    rows: dict = {}
    for c in cells:
        rows.setdefault((c["estimator"], c["prior"]), {})[c["k"]] = c
    return rows


def snapshot_markdown(snap: dict, ks: list[int]) -> list[str]:
    """The header and two tables of one snapshot."""
    mc = snap["monte_carlo"]
    priors = ", ".join(f"{n} {v:.4f}" for n, v in snap["prior_mse"].items())
    lines = [f"## {snap['label']}", "",
             f"Mean exact pass rate {snap['mean_pass_rate']:.3f}; ||g|| = {snap['grad_norm']:.4f}; "
             f"{snap['distinct_rows']} distinct (prompt, response) rows in the pool. Prior MSE against the exact "
             f"pass rate: {priors}.", "",
             f"Convergence check ({mc['rollouts_per_prompt']} rollouts per prompt, b = exact p(x)): cosine to the "
             f"exact gradient {mc['cosine']:.4f}, relative squared error {mc['rel_sq_error']:.4f}; its two halves: "
             f"cosine to each other {mc['half_cosine']:.4f}, first half's relative error {mc['half_rel_sq_error']:.4f}.",
             "", "Cosine to the exact gradient (mean over repeats) and relative squared error after the best scale:", "",
             "| estimator | prior | " + " | ".join(f"cos k={k} | err k={k}" for k in ks) + " |",
             "|---|---|" + "---:|---:|" * len(ks)]
    rows = _rows(fixed_k(snap["cells"]))
    for (name, prior), by_k in rows.items():
        vals = " | ".join(f"{_f(by_k[k].get('cosine'))} | {_f(by_k[k].get('rel_sq_error'))}" for k in ks)
        lines.append(f"| {name} | {prior or ''} | {vals} |")
    lines += ["", "Excess error over the floor (b = true pass rate), scale of the mean estimate along g "
              "(1 = unbiased in size), and squared bias beyond the floor's:", "",
              "| estimator | prior | " + " | ".join(f"excess k={k} | E-scale k={k} | bias² k={k}" for k in ks) + " |",
              "|---|---|" + "---:|---:|---:|" * len(ks)]
    for (name, prior), by_k in rows.items():
        vals = " | ".join(f"{_f(by_k[k].get('excess'))} | {_f(by_k[k].get('mean_along'), 2)} | {_f(by_k[k].get('bias_sq'))}"
                          for k in ks)
        lines.append(f"| {name} | {prior or ''} | {vals} |")
    osla = [c for c in snap["cells"] if "osla" in c]
    if osla:
        lines += ["", f"V0.5 (`{osla[0]['estimator']}`) on OSLA-allocated rollouts (each prompt's rollouts averaged; "
                  "compare with the fixed-k rows at the same mean rollouts per prompt):", "",
                  "| rule | k_init | k_max | max_rounds | prior | rollouts per prompt | cos | err |",
                  "|---|---:|---:|---:|---|---:|---:|---:|"]
        for c in osla:
            o = c["osla"]
            lines.append(f"| {o['rule']} | {o['k_init']} | {o['k_max']} "
                         f"| {o['max_rounds'] if o['max_rounds'] is not None else '-'} | "
                         f"{c['prior']} | {c['rollouts_per_prompt']:.2f} | {_f(c['cosine'])} | {_f(c['rel_sq_error'])} |")
    if snap.get("ratios"):
        lines += ["", "Paired error ratios over the shared repeats, 95% interval (delta method):", "",
                  "| k | estimator | prior | against | its prior | ratio [95% interval] |", "|---:|---|---|---|---|---:|"]
        for r in snap["ratios"]:
            lines.append(f"| {r['k']} | {r['estimator']} | {r['prior'] or ''} | {r['against']} | "
                         f"{r['against_prior'] or ''} | {_interval(r)} |")
    rules = [c for c in snap["cells"] if "rule" in c]
    if rules:
        lines += ["", "Every rollout rule at the plan budget (mean rollouts per prompt at most the budget; planned on the "
                  "value-model prior): error and its ratio to each fixed-k estimator at the same mean rollouts "
                  "(log-log interpolation), 95% interval:", "",
                  "| rule | k_init | budget per prompt | estimator | rollouts per prompt | rounds | err | "
                  "vs V0.5 fixed k | vs RLOO fixed k |", "|---|---:|---:|---|---:|---:|---:|---:|---:|"]
        for c in rules:
            vs = c["against_fixed"]
            lines.append(f"| {c['rule']['label']} | {c['k']} | {c['rule']['budget_per_prompt']} | {c['estimator']} | "
                         f"{c['rollouts_per_prompt']:.2f} | {c['rounds']:.2f} | {_f(c['rel_sq_error'])} | "
                         f"{_interval(vs['v05_eb'])} | {_interval(vs['rloo'])} |")
    return lines + [""]


def markdown(report: dict) -> str:
    """The report as Markdown (every cell)."""
    st = report["settings"]
    lines = ["# Policy-gradient error against the exact gradient", "",
             f"{st['prompts']} prompts of the built-in task, {st['pool']} pre-drawn rollouts per prompt, "
             f"{st['repeats']} repeats per cell (k-subsets without replacement), temperature {st['temperature']:g}, "
             f"seed {st['seed']}. Estimates use the sequence-level score function; 'err' is "
             "mean ||a g_hat - g||^2 / ||g||^2 with one least-squares scale a per cell. "
             f"Priors: value model (unseen prompts, context of {st['context']} other prompts), oracle (exact p), "
             f"noisy oracle (logit SD {st['noise_sd']:g}), hallucination ({st['hallucination']:g} mirrored), "
             "history(m) (each prompt's Beta posterior of m earlier rollouts of the same policy, docs/rl.md).", ""]
    for snap in report["snapshots"]:
        lines += snapshot_markdown(snap, list(st["group_sizes"]))
    return "\n".join(lines)


def plot(report: dict, path: Path) -> None:
    """Error after best scaling, and its excess over the floor, against k: one row of panels per snapshot."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    snaps = report["snapshots"]
    fig, axes = plt.subplots(len(snaps), 2, figsize=(10, 3.4 * len(snaps)), squeeze=False)
    for row, snap in zip(axes, snaps):
        rows = _rows(fixed_k(snap["cells"]))
        for name, prior, label, color, style in PLOTTED:
            key = next((kp for kp in rows if kp[0] == name and (prior is None or (kp[1] or "").startswith(prior))), None)
            if key is None:
                continue
            ks = sorted(rows[key])
            err = [rows[key][k].get("rel_sq_error", np.nan) for k in ks]
            exc = [rows[key][k].get("excess", np.nan) for k in ks]
            row[0].plot(ks, err, style, color=color, marker="o", label=label)
            if name != FLOOR:
                row[1].plot(ks, exc, style, color=color, marker="o", label=label)
        row[0].set(title=f"{snap['label']}: gradient error", xlabel="k (rollouts per prompt)",
                   ylabel="relative squared error", yscale="log")
        row[1].axhline(0, color="black", lw=0.8)
        row[1].set(title="excess over b = p(x) (the baseline's error)", xlabel="k (rollouts per prompt)",
                   ylabel="error minus error at b = p(x)")
        for ax in row:
            ax.set_xticks(ks, [str(k) for k in ks])
            ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def plot_rules(report: dict, path: Path) -> None:
    """Each rule's error over the same estimator's at fixed k with the same mean rollouts (95% intervals): one
    row of panels per snapshot, one panel per k_init."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    snaps = report["snapshots"]
    ks = sorted({c["k"] for c in snaps[0]["cells"] if "rule" in c})
    fig, axes = plt.subplots(len(snaps), len(ks), figsize=(6 * len(ks), 3.4 * len(snaps) + 0.5), squeeze=False)
    styles = {"v05_eb": ("V0.5 (value prior) vs V0.5 fixed k", "tab:red", -0.15),
              "rloo": ("RLOO vs RLOO fixed k", "tab:blue", 0.15)}
    for row, snap in zip(axes, snaps):
        for ax, k in zip(row, ks):
            cells = [c for c in snap["cells"] if "rule" in c and c["k"] == k]
            labels = list(dict.fromkeys(c["rule"]["label"] for c in cells))
            for name, (label, color, shift) in styles.items():
                mine = {c["rule"]["label"]: c for c in cells if c["estimator"] == name}
                y = np.arange(len(labels)) + shift
                r = np.array([mine[lb]["against_fixed"][name]["ratio"] for lb in labels])
                lo = np.array([mine[lb]["against_fixed"][name]["low"] for lb in labels])
                hi = np.array([mine[lb]["against_fixed"][name]["high"] for lb in labels])
                ax.errorbar(r, y, xerr=[r - lo, hi - r], fmt="o", color=color, label=label, capsize=2)
            drawn = {lb: np.mean([c["rollouts_per_prompt"] for c in cells if c["rule"]["label"] == lb]) for lb in labels}
            names = [f"{lb.replace('_focused', '')} ({drawn[lb]:.1f})" for lb in labels]
            ax.set_yticks(np.arange(len(labels)), names, fontsize=7)
            ax.invert_yaxis()
            ax.axvline(1, color="black", lw=0.8)
            ax.set_title(f"{snap['label']}: k_init={k}, budget {cells[0]['rule']['budget_per_prompt']}/prompt", fontsize=9)
            ax.set_xlabel("error / fixed-k error at the same mean rollouts (95% interval)", fontsize=8)
            ax.grid(alpha=0.3, axis="x")
    handles, legend = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, legend, loc="lower center", ncol=2, fontsize=8,
               title="rule (mean rollouts drawn per prompt)", title_fontsize=8)
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    fig.savefig(path, dpi=90)
    plt.close(fig)
