"""RL engine ablations and throughput: final accuracy, gradient noise, rollouts/s and generation rounds.

Each method trains from the same warm-up for ``--rollouts`` rollouts per seed (seeds outer, methods inner,
one torch thread, one run at a time, so the machine's load spreads evenly over the methods). Per method:
rollouts per CPU-second (rollouts per step over the sum of the median per-step CPU times of value-model
prediction, sampling, the estimator and the update: the engine's cost, which other jobs on a shared
machine change far less than wall-clock time), the same per wall-clock second, the median CPU times,
generation rounds and rollouts per step, the gradient norm's mean, variance and coefficient of variation,
and the final held-out accuracy; each as the mean over seeds with a 95% t-interval. Dr. GRPO (the group mean
without the std division) isolates the baseline's effect on gradient noise from GRPO's std scaling; the ``max_rounds`` rows show
what capping OSLA's generation rounds buys in throughput (each round is one generation pass).

Writes ``rl_profile.json``, ``rl_profile.md`` and ``rl_profile.png`` under ``--out``::

    v05 bench rl-profile --rollouts 40000 --seeds 0,1,2 --out runs/bench/rl_profile
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from v05.stats import ci95
from v05.bench.demo import uncapped
from v05.bench.report_files import write_documents
from v05.rl import TrainConfig, train

OSLA = {"method.estimator": "v05", "method.allocation": "osla"}


@dataclass(frozen=True)
class Method:
    label: str
    slug: str
    settings: dict


METHODS = (
    Method("V0.5 k_init=4 + OSLA", "v05_osla", OSLA),
    Method("V0.5 + OSLA, max_rounds=4", "v05_osla_max4", {**OSLA, "osla.max_rounds": 4}),
    Method("V0.5 + OSLA, max_rounds=2", "v05_osla_max2", {**OSLA, "osla.max_rounds": 2}),
    Method("V0.5 + OSLA, max_rounds=1", "v05_osla_max1", {**OSLA, "osla.max_rounds": 1}),
    Method("V0.5 + OSLA, 4 per round", "v05_osla_per4", {**OSLA, "osla.per_round": 4}),
    Method("V0.5 + OSLA, rule eb", "v05_osla_eb", {**OSLA, "osla.rule": "eb"}),
    Method("V0.5 k=4 fixed", "v05_k4", {"method.estimator": "v05", "method.group_size": 4}),
    Method("GRPO k=4", "grpo_k4", {"method.estimator": "grpo", "method.group_size": 4}),
    Method("Dr. GRPO k=4", "drgrpo_k4", {"method.estimator": "dr_grpo", "method.group_size": 4}),
    Method("GRPO k=16", "grpo_k16", {"method.estimator": "grpo", "method.group_size": 16}),
)
PHASES = ("value", "sample", "estimator", "update")


def configs(methods: list[str], seeds: list[int], rollouts: int, value_model: str) -> dict[tuple[str, int], TrainConfig]:
    """Every run's config by (method slug, seed), each checked now, before the first run trains.

    Raises
    ------
    ValueError
        If a method slug is unknown (or a setting is invalid).
    """
    by_slug = {m.slug: m for m in METHODS}
    unknown = [s for s in methods if s not in by_slug]
    if unknown:
        raise ValueError(f"--methods: unknown method(s) {unknown}; known: {', '.join(by_slug)}")
    return {(slug, seed): TrainConfig().with_settings({**uncapped(by_slug[slug].settings), **by_slug[slug].settings,
                                                       "seed": seed, "total_rollouts": rollouts,
                                                       "eval.every_rollouts": rollouts, "prior.value_model": value_model})
            for slug in methods for seed in seeds}


def run(runs: dict[tuple[str, int], TrainConfig], out: Path, *, progress=print) -> dict:
    """Train every run (seeds outer, methods inner) under ``out``; the per-method summaries by slug."""
    by_slug = {m.slug: m for m in METHODS}
    slugs = list(dict.fromkeys(slug for slug, _ in runs))
    records: dict[str, list] = {slug: [] for slug in slugs}
    for seed in dict.fromkeys(seed for _, seed in runs):
        for slug in slugs:
            result = train(runs[slug, seed], out / f"{slug}_seed{seed}", warmup_cache=out / "warmup", tensorboard=False)
            records[slug].append(result.records)
            progress(f"{by_slug[slug].label:32s} seed {seed}: final accuracy {result.final_accuracy:.3f}")
    return {slug: {"label": by_slug[slug].label, "settings": by_slug[slug].settings, **summarise(records[slug])}
            for slug in slugs}


def write_report(report: dict, out: Path) -> dict[str, Path]:
    """Write rl_profile.json (``{"args": the command's options, "results": :func:`run`'s}``), rl_profile.md and
    rl_profile.png into ``out``; returns their paths."""
    args, results = report["args"], report["results"]
    seeds = [int(s) for s in args["seeds"].split(",")]
    text = markdown(results, seeds, int(args["rollouts"]))
    json_path, md_path = write_documents(out, {"rl_profile.json": report, "rl_profile.md": text}).values()
    paths = {"json": json_path, "markdown": md_path, "png": Path(out) / "rl_profile.png"}
    plot(results, paths["png"])
    return paths


def summarise(runs: list[list[dict]]) -> dict:
    """Per-seed figures of one method's runs (``runs``: each run's metric records) and their mean and 95% CI."""
    per_seed: dict[str, list] = {}
    for records in runs:
        steps = records[1:]
        median_ms = {p: 1000 * float(np.median([r[f"time/{p}_s"] for r in steps])) for p in PHASES}
        cpu_ms = {p: 1000 * float(np.median([r[f"time/{p}_cpu_s"] for r in steps])) for p in PHASES}
        per_step = float(np.mean([r["budget/rollouts_step"] for r in steps]))
        grad = np.array([r["train/grad_norm"] for r in steps])
        values = {"rollouts_per_s": per_step / (sum(median_ms.values()) / 1000),
                  "rollouts_per_cpu_s": per_step / (sum(cpu_ms.values()) / 1000),
                  "rounds_per_step": float(np.mean([r["budget/rounds"] for r in steps])),
                  "rollouts_per_step": per_step, "final_accuracy": records[-1]["eval/accuracy"],
                  "grad_norm_mean": float(grad.mean()), "grad_norm_var": float(grad.var()),
                  "grad_norm_cv": float(grad.std() / grad.mean()), **{f"{p}_ms": median_ms[p] for p in PHASES},
                  **{f"{p}_cpu_ms": cpu_ms[p] for p in PHASES}}
        for key, value in values.items():
            per_seed.setdefault(key, []).append(value)
    return {key: {"per_seed": v, "mean": float(np.mean(v)), "ci95": ci95(v) or 0.0} for key, v in per_seed.items()}


def markdown(results: dict, seeds: list[int], rollouts: int) -> str:
    """Two tables: throughput and rounds, then accuracy and gradient noise (mean ± 95% CI over seeds)."""
    def cell(r, key, fmt):
        return f"{r[key]['mean']:{fmt}} ± {r[key]['ci95']:{fmt}}"

    lines = [f"# RL engine profile: {rollouts} rollouts per run, seeds {seeds} (mean ± 95% CI half-width over seeds)", "",
             "| method | rollouts per CPU-s | rollouts/s (wall) | rounds/step | rollouts/step "
             "| median CPU ms/step: value / sample / estimator / update |",
             "|---|---|---|---|---|---|"]
    for r in results.values():
        ms = " / ".join(f"{r[f'{p}_cpu_ms']['mean']:.1f}" for p in PHASES)
        lines.append(f"| {r['label']} | {cell(r, 'rollouts_per_cpu_s', '.0f')} | {cell(r, 'rollouts_per_s', '.0f')} "
                     f"| {cell(r, 'rounds_per_step', '.2f')} | {cell(r, 'rollouts_per_step', '.1f')} | {ms} |")
    lines += ["", "| method | final accuracy | grad-norm mean | grad-norm var | grad-norm CV |", "|---|---|---|---|---|"]
    for r in results.values():
        lines.append(f"| {r['label']} | {cell(r, 'final_accuracy', '.3f')} | {cell(r, 'grad_norm_mean', '.3f')} "
                     f"| {cell(r, 'grad_norm_var', '.4f')} | {cell(r, 'grad_norm_cv', '.3f')} |")
    return "\n".join(lines) + "\n"


def plot(results: dict, path: Path) -> None:
    """Rollouts/s, generation rounds per step and final accuracy per method, with 95% CIs."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [r["label"] for r in results.values()]
    y = np.arange(len(labels))[::-1]
    fig, axes = plt.subplots(1, 3, figsize=(14, 0.45 * len(labels) + 1.6), sharey=True)
    for ax, key, title in zip(axes, ("rollouts_per_cpu_s", "rounds_per_step", "final_accuracy"),
                              ("rollouts per CPU-second (median step)", "generation rounds per step",
                               "final held-out accuracy")):
        mean = [r[key]["mean"] for r in results.values()]
        ci = [r[key]["ci95"] for r in results.values()]
        ax.errorbar(mean, y, xerr=ci, fmt="o", color="tab:red", ecolor="gray", capsize=3)
        for r, yy in zip(results.values(), y):
            ax.scatter(r[key]["per_seed"], [yy] * len(r[key]["per_seed"]), s=8, color="black", alpha=0.4)
        ax.set(title=title)
        ax.grid(alpha=0.3)
    axes[0].set_yticks(y, labels)
    fig.suptitle("RL engine profile (mean, 95% CI over seeds; dots: seeds)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)

