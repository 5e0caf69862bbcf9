"""The gradient benchmark's report: ``gradient.json``, ``gradient.md`` and ``gradient.png``."""

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
           ("v05_eb_mix", "halluc", "v05_eb_mix, hallucination prior", "tab:pink", ":"))
"""(estimator, prior name prefix, label, colour, line style) of the plotted rows."""


def write_report(report: dict, out: Path) -> dict[str, Path]:
    """Write gradient.json, gradient.md and gradient.png into ``out``; returns their paths."""
    json_path, md_path = write_documents(out, {"gradient.json": report, "gradient.md": markdown(report)}).values()
    paths = {"json": json_path, "markdown": md_path, "png": Path(out) / "gradient.png"}
    plot(report, paths["png"])
    return paths


def _f(x, digits=3) -> str:
    return "n/a" if x is None else f"{x:.{digits}f}"


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
    rows = _rows([c for c in snap["cells"] if "osla" not in c])
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
             f"noisy oracle (logit SD {st['noise_sd']:g}), hallucination ({st['hallucination']:g} mirrored).", ""]
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
        rows = _rows([c for c in snap["cells"] if "osla" not in c])
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
