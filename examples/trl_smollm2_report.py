"""Markdown table and curves of ``examples/trl_smollm2_cpu.py``'s ``results.json`` (run on its own to redraw):

    .venv/bin/python examples/trl_smollm2_report.py runs/trl_smollm2

Intervals: with one seed, a held-out accuracy gets the 95% Wilson interval over the held-out prompts; with
several, the mean over seeds gets a 95% t interval (clipped to [0, 1]), and V0.5 - GRPO is compared seed by
seed (paired).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
from scipy.stats import norm

from v05.stats import mean_interval

HELDOUT = 30


def wilson(p: float, n: int, level: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of a proportion ``p`` observed on ``n`` items."""
    z = norm.ppf(0.5 + level / 2)
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


def accuracy_interval(values) -> tuple[float, float, float]:
    """Mean accuracy and its 95% interval: Wilson for one seed, t over seeds (clipped to [0, 1]) for several."""
    m, lo, hi = mean_interval(values)
    if len(values) == 1:
        lo, hi = wilson(m, HELDOUT)
    return m, max(lo, 0.0), min(hi, 1.0)


def accuracy_cell(values) -> str:
    return "{:.3f} [{:.3f}, {:.3f}]".format(*accuracy_interval(values))


def runs_of(data: dict, arm: str) -> list[dict]:
    return sorted((r for r in data["results"] if r["arm"] == arm), key=lambda r: r["seed"])


def steps_mean(run: dict, key: str, first: int | None = None, last: int | None = None) -> float:
    values = [s[key] for s in run["steps"] if key in s]
    values = values[:first] if first else values[-last:] if last else values
    return float(np.mean(values)) if values else float("nan")


def ends(n_steps: int) -> int:
    """Steps averaged at each end of training in the summary: 5, fewer when the two ends would overlap."""
    return min(5, n_steps // 2)


def summary_table(data: dict) -> list[str]:
    n = ends(data["settings"]["steps"])
    steps = f"step{'s' * (n > 1)}"
    ends_head = f"train reward, first {n} {steps} | last {n} {steps}" if n else "train reward, all steps | -"
    lines = [f"| arm | seeds | held-out acc. step 0 | held-out acc. final | {ends_head} | s / step (mean) | run wall s |",
             "|---|---|---|---|---|---|---|---|"]
    for arm in data["arms"]:
        runs = runs_of(data, arm)
        if not runs:
            continue
        acc0 = [r["evals"][0]["accuracy"] for r in runs]
        acc1 = [r["evals"][-1]["accuracy"] for r in runs]
        first = np.mean([steps_mean(r, "reward", first=n) if n else steps_mean(r, "reward") for r in runs])
        last = f"{np.mean([steps_mean(r, 'reward', last=n) for r in runs]):.3f}" if n else "-"
        lines.append(
            f"| {arm} | {','.join(str(r['seed']) for r in runs)} | {accuracy_cell(acc0)} | {accuracy_cell(acc1)} | "
            f"{first:.3f} | {last} | "
            f"{np.mean([steps_mean(r, 'step_time') for r in runs]):.1f} | "
            f"{np.mean([r['wall_seconds'] for r in runs]):.0f} |")
    return lines


def paired_lines(data: dict) -> list[str]:
    grpo = {r["seed"]: r for r in runs_of(data, "grpo")}
    pairs = [(r["seed"], r["evals"][-1]["accuracy"] - grpo[r["seed"]]["evals"][-1]["accuracy"])
             for r in runs_of(data, "v05") if r["seed"] in grpo]
    if not pairs:
        return []
    m, lo, hi = mean_interval([d for _, d in pairs])
    per_seed = ", ".join(f"seed {s}: {d:+.3f}" for s, d in pairs)
    ci = f" (95% t interval [{lo:+.3f}, {hi:+.3f}])" if np.isfinite(lo) else " (one seed: no interval across seeds)"
    return [f"Final held-out accuracy, V0.5 - GRPO, paired by seed: {per_seed}; mean {m:+.3f}{ci}."]


def arms_with_runs(data: dict) -> list[str]:
    """The arms that have finished runs (an interim report, written after every run, may lack the second)."""
    return [arm for arm in data["arms"] if runs_of(data, arm)]


def curve_table(data: dict) -> list[str]:
    arms = arms_with_runs(data)
    steps = [e["step"] for e in runs_of(data, arms[0])[0]["evals"]]
    lines = ["| step | " + " | ".join(arms) + " |", "|---" * (len(arms) + 1) + "|"]
    for i, step in enumerate(steps):
        cells = [accuracy_cell([r["evals"][i]["accuracy"] for r in runs_of(data, arm)]) for arm in arms]
        lines.append(f"| {step} | " + " | ".join(cells) + " |")
    return lines


def overhead_lines(data: dict) -> list[str]:
    o = data["overhead"]
    lines = []
    if o.get("same_run_fraction") is not None:
        lines.append(f"- From the V0.5 training runs: V0.5's own code took {o['same_run_overhead_s']:.1f} s of "
                     f"{o['same_run_step_s']:.0f} s of step time, **{100 * o['same_run_fraction']:.2f}%** (value model, "
                     "estimator, bookkeeping; generation and the update are TRL's).")
    ab = (data.get("timing_ab") or {}).get("seconds", {})
    for kind, suffix, what in (("", "", "wall"), ("cpu_", "_cpu", "CPU (this process)")):
        if f"ab_{kind}fraction_median" not in o:
            continue
        g, v = ab[f"grpo{suffix}"], ab[f"v05{suffix}"]
        lines.append(f"- Interleaved A/B, {what} time, same weights, seed and prompts ({len(g)} pairs, identical "
                     f"completions: {o['ab_same_completions']}): GRPOTrainer median {o[f'ab_{kind}grpo_median_s']:.2f} "
                     f"s, V05GRPOTrainer {o[f'ab_{kind}v05_median_s']:.2f} s per generation batch; median ratio - 1 = "
                     f"**{100 * o[f'ab_{kind}fraction_median']:+.2f}%** (per pair: "
                     + ", ".join(f"{100 * (b / a - 1):+.1f}%" for a, b in zip(g, v)) + ").")
    timing = data.get("timing_ab") or {}
    if "loadavg" in timing:
        load = [round(timing[k][0], 1) for k in ("loadavg_before", "loadavg") if k in timing]
        lines.append(f"- 1-min load average around the A/B (start, end): {load} (other jobs shared the 2 cores).")
    return lines


def diagnostics_lines(data: dict) -> list[str]:
    runs = runs_of(data, "v05")
    keys = ("v05/weight_mean", "v05/prior_rejected_frac", "v05/prior_mean", "v05/pass_rate_mean", "v05/prior_mse",
            "v05/zero_advantage_frac")
    if not runs:
        return []
    cells = [f"{k} {np.mean([steps_mean(r, k) for r in runs]):.3f}" for k in keys]
    grpo = runs_of(data, "grpo")
    if grpo:
        cells.append(f"GRPO frac_reward_zero_std {np.mean([steps_mean(r, 'frac_reward_zero_std') for r in grpo]):.3f}")
    return ["V0.5 diagnostics, mean over steps and seeds: " + "; ".join(cells) + "."]


def markdown(data: dict) -> str:
    s = data["settings"]
    load = [round(x, 1) for r in data["results"] for x in (r["loadavg_before"][0], r["loadavg_after"][0])]
    parts = [
        "# SmolLM2-135M-Instruct on single-digit sums: V05GRPOTrainer vs GRPOTrainer (CPU)", "",
        f"Settings: {s['prompts_per_step']} prompts x {s['num_generations']} completions per step, {s['steps']} steps "
        f"({s['prompts_per_step'] * s['num_generations'] * s['steps']} rollouts per run, equal in both arms), "
        f"completions <= {s['max_completion_length']} tokens, lr {s['learning_rate']}, temperature 1, beta 0, "
        f"TRL's default loss; V0.5 = estimator `v05` with the shipped value model's prior, no top-ups. Held-out: "
        f"{HELDOUT} sums, greedy, math-verify; intervals 95% (Wilson over the held-out sums for one seed, t over "
        f"seeds for several, clipped to [0, 1]). Machine: {data['machine']['cpus']} CPUs, torch threads "
        f"{data['machine']['torch_threads']}, trl {data['machine']['trl']}; 1-min load average at the start and "
        f"end of each run: {load} (other jobs shared the cores).", "",
        *summary_table(data), "", *paired_lines(data), "", "Held-out accuracy by step:", "", *curve_table(data), "",
        "Throughput overhead of V0.5 at fixed k:", "", *overhead_lines(data), "", *diagnostics_lines(data), "",
    ]
    return "\n".join(parts)


def plot(data: dict, path: Path) -> None:
    """``curves.png``: training reward per step (a running mean over up to 5 steps once there are enough) and
    held-out accuracy with its interval, every arm that has runs."""
    import matplotlib.pyplot as plt

    fig = figure(data)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def figure(data: dict):
    """The figure of :func:`plot`; every legend entry is a line drawn with at least two points or markers."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    fig, (ax_r, ax_a) = plt.subplots(1, 2, figsize=(11, 4))
    colors = {"grpo": "tab:blue", "v05": "tab:red"}
    for arm in arms_with_runs(data):
        runs = runs_of(data, arm)
        rewards = np.array([[s["reward"] for s in r["steps"]] for r in runs])  # (seeds, steps)
        steps = np.arange(1, rewards.shape[1] + 1)
        mean = rewards.mean(axis=0)
        window = min(5, len(mean) // 2)
        if window >= 2:  # a running mean with at least two points; the raw means faintly behind it
            smooth = np.convolve(mean, np.ones(window) / window, mode="valid")
            ax_r.plot(steps, mean, color=colors.get(arm), alpha=0.25)
            ax_r.plot(steps[window - 1:], smooth, color=colors.get(arm), label=f"{arm} ({window}-step mean)")
        else:
            ax_r.plot(steps, mean, marker="o", color=colors.get(arm), label=f"{arm} (per step)")
        eval_steps = [e["step"] for e in runs[0]["evals"]]
        acc = np.array([[e["accuracy"] for e in r["evals"]] for r in runs])
        m, lo, hi = (np.array(c) for c in zip(*[accuracy_interval(col) for col in acc.T]))
        ax_a.plot(eval_steps, m, marker="o", color=colors.get(arm), label=arm)
        ax_a.fill_between(eval_steps, lo, hi, color=colors.get(arm), alpha=0.15)
    per_step = data["settings"]["prompts_per_step"] * data["settings"]["num_generations"]
    ax_r.set(xlabel="optimizer step", ylabel="mean training reward", title=f"Training reward ({per_step} rollouts / step)")
    ax_a.set(xlabel="optimizer step", ylabel="accuracy", ylim=(0, 1),
             title=f"Held-out accuracy ({HELDOUT} sums, greedy; 95% interval)")
    for ax in (ax_r, ax_a):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        ax.legend()
    seeds = sorted({r["seed"] for r in data["results"]})
    fig.suptitle(f"SmolLM2-135M-Instruct, GRPOTrainer vs V05GRPOTrainer, equal rollouts, seeds {seeds}")
    fig.tight_layout()
    return fig


def write_report(out) -> None:
    out = Path(out)
    data = json.loads((out / "results.json").read_text())
    (out / "summary.md").write_text(markdown(data))
    plot(data, out / "curves.png")


if __name__ == "__main__":
    write_report(sys.argv[1] if len(sys.argv) > 1 else "runs/trl_smollm2")
