"""The language-model gradient benchmark's report: ``gradient.json``, ``gradient.md`` and ``gradient.png``."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from v05.bench.gradient import FLOOR, NO_BASELINE, OPTIMAL
from v05.bench.report_files import write_documents

LABELS = {(FLOOR, None): "b = p(x) (reference half's pass rate): the rewards' own noise",
          (OPTIMAL, None): "b = variance-optimal constant (oracle)", (NO_BASELINE, None): "no baseline (b = 0)",
          ("grpo", None): "GRPO", ("rloo", None): "RLOO", ("mean", None): "group mean",
          ("v05_eb", "value"): "V0.5 `v05_eb`, value-model prior", ("v05_eb", "oracle"): "V0.5 `v05_eb`, oracle prior",
          ("v05_paper", "value"): "V0.5 paper form, value-model prior",
          ("v05_paper", "oracle"): "V0.5 paper form, oracle prior", ("eb_batch", None): "`eb_batch` (no prior)",
          ("js_loo", None): "`js_loo` (no prior)", ("v05_eb", "history"): "V0.5 `v05_eb`, history prior (screening)",
          ("v05_eb_reg", "value"): "`v05_eb_reg`, value-model prior"}
PLOTTED = (((FLOOR, None), "black", "-"), ((OPTIMAL, None), "tab:green", "-"), ((NO_BASELINE, None), "grey", ":"),
           (("rloo", None), "tab:blue", "-"),
           (("grpo", None), "tab:cyan", "--"), (("v05_eb", "value"), "tab:red", "-"),
           (("v05_eb", "oracle"), "tab:orange", "--"), (("v05_paper", "value"), "tab:purple", "-."))


def write_report(report: dict, out: Path) -> dict[str, Path]:
    """Write gradient.json, gradient.md and gradient.png into ``out``; returns their paths."""
    json_path, md_path = write_documents(out, {"gradient.json": report, "gradient.md": markdown(report)}).values()
    paths = {"json": json_path, "markdown": md_path, "png": Path(out) / "gradient.png"}
    plot(report, paths["png"])
    return paths


def _ci(c: dict, key: str, digits: int = 3) -> str:
    if c.get(key) is None:
        return "n/a"
    lo, hi = c[f"{key}_ci"]
    return f"{c[key]:.{digits}f} [{lo:.{digits}f}, {hi:.{digits}f}]"


def _f(x) -> str:
    return "n/a" if x is None else f"{x:.4g}"


def _rows(cells: list[dict]) -> dict:
    rows: dict = {}
    for c in cells:
        rows.setdefault((c["estimator"], c["prior"]), {})[c["k"]] = c
    return rows


def markdown(report: dict) -> str:
    """The report as Markdown: the batch, the reference's precision and every cell with its interval."""
    st, ref = report["settings"], report["reference"]
    ks = list(st["group_sizes"])
    rows = _rows(report["cells"])
    lines = ["# Policy-gradient error on a real language model", "",
             f"{report['policy']}: {st['prompts']} prompts chosen from {st['candidates']} screened candidates "
             f"({st['screen']} completions each), {st['pool']} completions per prompt (temperature {st['temperature']:g}, "
             f"at most {st['max_new_tokens']} tokens; mean {report['mean_completion_tokens']:.1f}, "
             f"{100 * report['truncated_share']:.0f}% cut at the limit), graded by math-verify; "
             f"{report['distinct_rows']} distinct completions. Half A ({st['pool'] // 2} per prompt) feeds the "
             f"estimators ({st['repeats']} k-subsets per cell), half B is the reference. Score gradients of every "
             f"weight matrix of the transformer blocks, sketched to {report['sketch_size']:,} numbers (rank "
             f"{st['rank']} Gaussian sketch, unbiased for inner products). Seed {st['seed']}; "
             f"{report['wall_seconds'] / 60:.1f} min wall, load average {report['loadavg'][0]:.1f} at the end.", "",
             f"Reference: ||g||^2 estimated by <U_A, U_B> = {ref['g_sq']:.4g} [{ref['g_sq_ci'][0]:.4g}, "
             f"{ref['g_sq_ci'][1]:.4g}] (not positive in {100 * ref['g_sq_nonpositive_share']:.1f}% of the prompt "
             "resamples, which the intervals leave out); the halves' RLOO estimates agree to "
             f"cosine {ref['half_cosine']:.3f}; U_B's own noise is {ref['reference_rel_noise']:.2f} ||g||^2 "
             f"(no need to remove it: every figure uses U_B only in products with estimates from A). "
             f"Mean squared score norm: correct completions {_f(ref['score_sq_norm']['correct'])}, wrong ones "
             f"{_f(ref['score_sq_norm']['wrong'])}. Prior MSE against the reference half's pass rate: "
             + ", ".join(f"{n} {v:.4f}" for n, v in report["prior_mse"].items()) + ".", "",
             "'err' = mean ||a g_hat - g||^2 / ||g||^2 after one least-squares scale a per cell; 'nsr' = err / (1 - err), "
             "the noise-to-signal ratio Var(g_hat / c) / ||g||^2 of an estimate with mean c g (additive over noise "
             "sources). Brackets: 95% bootstrap interval over prompts (each prompt's pool resampled with it; "
             f"{st['bootstrap']} resamples, repeats fixed); excess intervals are paired (same resamples, same repeats).",
             "", "| estimator | " + " | ".join(f"err k={k} | nsr k={k}" for k in ks) + " |",
             "|---|" + "---:|---:|" * len(ks)]
    for key, by_k in rows.items():
        lines.append(f"| {LABELS.get(key, key)} | "
                     + " | ".join(f"{_ci(by_k[k], 'rel_sq_error')} | {_ci(by_k[k], 'nsr', 2)}" for k in ks) + " |")
    lines += ["", "Excess over b = p(x) (the baseline's own error) in err and in nsr:", "",
              "| estimator | " + " | ".join(f"excess k={k} | excess nsr k={k}" for k in ks) + " |",
              "|---|" + "---:|---:|" * len(ks)]
    for key, by_k in rows.items():
        if key != (FLOOR, None):
            lines.append(f"| {LABELS.get(key, key)} | "
                         + " | ".join(f"{_ci(by_k[k], 'excess')} | {_ci(by_k[k], 'excess_nsr', 2)}" for k in ks) + " |")
    lines += ["", "Against RLOO at the same k: the share of RLOO's excess over b = p(x) that the row removes, and RLOO's "
              "nsr over the row's (the rollouts RLOO would need for the row's noise, if nsr falls as 1/k):", "",
              "| estimator | " + " | ".join(f"removed k={k} | rollouts k={k}" for k in ks) + " |",
              "|---|" + "---:|---:|" * len(ks)]
    for key, by_k in rows.items():
        if all("excess_removed_vs_rloo" in by_k[k] for k in ks):
            lines.append(f"| {LABELS.get(key, key)} | " + " | ".join(
                f"{_ci(by_k[k], 'excess_removed_vs_rloo', 2)} | {_ci(by_k[k], 'rollouts_vs_rloo', 2)}" for k in ks) + " |")
    lines += ["", "What the value model adds: each value-free row's nsr over V0.5's with the value-model prior (the "
              "rollouts that row would need for V0.5's noise, if nsr falls as 1/k; above 1 the value model helps):", "",
              "| value-free row | " + " | ".join(f"k={k}" for k in ks) + " |", "|---|" + "---:|" * len(ks)]
    for key, by_k in rows.items():
        if all("value_prior_worth" in by_k[k] for k in ks):
            lines.append(f"| {LABELS.get(key, key)} | "
                         + " | ".join(_ci(by_k[k], "value_prior_worth", 2) for k in ks) + " |")
    lines += ["", "Share of groups that carry no gradient (every advantage 0), cosine to g (mean over repeats; "
              "its denominator uses the estimate of ||g||^2) and the mean estimate's scale along g:", "",
              "| estimator | " + " | ".join(f"silent k={k} | cos k={k} | E-scale k={k}" for k in ks) + " |",
              "|---|" + "---:|---:|---:|" * len(ks)]
    for key, by_k in rows.items():
        lines.append(f"| {LABELS.get(key, key)} | " + " | ".join(
            f"{by_k[k]['silent_share']:.3f} | {by_k[k]['cosine']:.3f} | {by_k[k]['mean_along']:.2f}"
            if "cosine" in by_k[k] else "n/a | n/a | n/a" for k in ks) + " |")
    lines += ["", "The batch (screening pass rate, pass rate of halves A and B, the value model's prior):", "",
              "| question | answer | screen | A | B | value prior |", "|---|---:|---:|---:|---:|---:|"]
    for b in report["batch"]:
        lines.append(f"| {b['question'].split('?')[0]}? | {b['answer']} | {b['screen_rate']:.2f} | {b['pool_rate_A']:.2f} | "
                     f"{b['pool_rate_B']:.2f} | {b['value_prior']:.2f} |")
    return "\n".join(lines) + "\n"


def plot(report: dict, path: Path) -> None:
    """Error after best scaling and its excess over b = p(x) against k, with the bootstrap intervals."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = _rows(report["cells"])
    fig, axes = plt.subplots(1, 2, figsize=(13, 3.6))
    for i, (key, color, style) in enumerate(PLOTTED):
        if key not in rows:
            continue
        ks = sorted(rows[key])
        shift = (i - (len(PLOTTED) - 1) / 2) * 0.07  # side by side at each k, so no interval hides another
        for ax, field in zip(axes, ("rel_sq_error", "excess")):
            if field == "excess" and key == (FLOOR, None):
                continue
            cells = [rows[key][k] for k in ks]
            if any(field not in c for c in cells):
                continue
            val = np.array([c[field] for c in cells])
            ci = np.array([c[f"{field}_ci"] for c in cells])
            ax.errorbar(np.array(ks) + shift, val, yerr=[val - ci[:, 0], ci[:, 1] - val], fmt=style, color=color,
                        marker="o", capsize=3, label=LABELS[key].replace("`", ""))
    axes[0].set(title=f"{report['policy']}: gradient error", xlabel="k (completions per prompt)",
                ylabel="relative squared error (best scale)")
    axes[1].axhline(0, color="black", lw=0.8)
    axes[1].set(title="excess over b = p(x) (the baseline's error)", xlabel="k (completions per prompt)",
                ylabel="error minus error at b = p(x)")
    ks = list(report["settings"]["group_sizes"])
    for ax in axes:
        ax.set_xticks(ks, [str(k) for k in ks])
        ax.grid(alpha=0.3)
    fig.legend(*axes[0].get_legend_handles_labels(), fontsize=7, loc="center right")  # outside both panels
    fig.tight_layout(rect=(0, 0, 0.70, 1))
    fig.savefig(path, dpi=90)
    plt.close(fig)
