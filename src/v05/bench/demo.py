"""``v05 demo``: V0.5 against GRPO and DAPO from the same warm-started policy, at equal total rollouts.

Every method trains the same warm-up policy on the same prompt stream (per seed) until it has spent the
same number of rollouts; held-out accuracy is measured at the same rollout marks with the same sampling
noise. Outputs (under ``out``): ``demo.json``, ``summary.md``, and four PNG plots. Runs already finished
in ``out`` (same settings) are not trained again, so a re-run only rebuilds the report.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from v05._validation import check_positive_int
from v05.bench.workers import run_in_workers
from v05.rl.config import TrainConfig
from v05.rl.loop import train
from v05.rl.setup import warm_start
from v05.rl.task import ArithmeticTask
from v05.value import ValueModel


@dataclass(frozen=True)
class Method:
    """One compared method: its label in reports, its run folders' name, its settings and plot colour."""

    label: str
    slug: str
    """Run folders are ``runs/<slug>_seed<seed>``."""
    settings: dict
    """Dotted ``TrainConfig`` settings on top of the shared ones (the ``--set`` form)."""
    color: str


def uncapped(settings: dict) -> dict:
    """``osla.max_rounds = None`` for an OSLA method's ``settings``: the RL comparisons were registered with the
    uncapped planner, before the default cap of 2; their recorded settings stay as registered."""
    return {"osla.max_rounds": None} if settings.get("method.allocation") == "osla" else {}


METHOD_LIST = (
    Method("V0.5 k_init=4 + OSLA", "v05_osla",
           {"method.estimator": "v05", "method.allocation": "osla", "osla.k_init": 4, "osla.k_max": 16,
            "osla.max_rounds": None}, "tab:red"),  # uncapped, as registered before the default cap of 2
    Method("GRPO k=4", "grpo_k4", {"method.estimator": "grpo", "method.group_size": 4}, "tab:blue"),
    Method("GRPO k=16", "grpo_k16", {"method.estimator": "grpo", "method.group_size": 16}, "tab:cyan"),
    Method("DAPO k=16", "dapo_k16", {"method.estimator": "dapo", "method.allocation": "dynamic",
                                     "method.group_size": 16, "optim.clip_high": 0.28}, "tab:green"),
)
METHODS = {m.label: m for m in METHOD_LIST}
"""The compared methods by label."""
COLORS = {m.label: m.color for m in METHOD_LIST}
REFERENCE = "GRPO k=16"
"""The method whose final accuracy the others are timed against (the paper's headline comparison)."""


@dataclass(frozen=True)
class DemoSettings:
    """Sizes of a demo run (the defaults: about 280 CPU-seconds; ``quick()``: about 36; docs/rl.md)."""

    seeds: tuple[int, ...] = (0, 1, 2, 3, 4)
    """RL seeds; every method runs every seed."""
    total_rollouts: int = 40000
    """Rollouts each run may spend."""
    eval_every_rollouts: int = 4000
    """Held-out evaluation interval (rollouts)."""
    n_train_prompts: int = 1024
    """Training pool size."""
    probe_every: int = 8
    """Steps between re-measurements of the true pass rate (baseline-error plot)."""
    workers: int = 2
    """Runs trained in parallel (one torch thread each)."""
    value_model: str = "default"
    """The value model behind V0.5's prior (``ValueModel.load`` name or directory)."""

    @classmethod
    def quick(cls) -> "DemoSettings":
        """The CI-sized demo."""
        return cls(seeds=(0, 1), total_rollouts=4000, eval_every_rollouts=1000, n_train_prompts=256, probe_every=4)

    def __post_init__(self):
        if not self.seeds or len(set(self.seeds)) != len(self.seeds):
            raise ValueError(f"seeds == {self.seeds!r}, must hold at least one seed, without repeats")
        for seed in self.seeds:
            check_positive_int(seed, "seed", minimum=0)
        for name in ("total_rollouts", "eval_every_rollouts", "n_train_prompts", "probe_every", "workers"):
            check_positive_int(getattr(self, name), name)

    def configs(self) -> list[tuple[Method, int, TrainConfig]]:
        """(method, seed, config) of every run, checked before any training starts."""
        shared = {"total_rollouts": self.total_rollouts, "eval.every_rollouts": self.eval_every_rollouts,
                  "task.n_train": self.n_train_prompts, "eval.probe_every": self.probe_every, "threads": 1,
                  "prior.value_model": self.value_model}
        return [(m, s, TrainConfig().with_settings({**shared, **m.settings, "seed": s}))
                for s in self.seeds for m in METHOD_LIST]


def _run_one(args) -> dict:
    """Worker: train one (method, seed) run and summarise it (must be picklable: top-level)."""
    method, seed, cfg, run_dir, cache, messages = args
    result = train(cfg, run_dir, warmup_cache=cache, tensorboard=False,
                   on_record=lambda r: messages.put((method, seed, r["rollouts"])))
    return summarise_run(method, seed, result.records)


def summarise_run(method: str, seed: int, records: list[dict]) -> dict:
    """The per-run entry of ``demo.json`` from its metric records."""
    steps = [r for r in records if r["step"] > 0]
    grad = np.array([r["train/grad_norm"] for r in steps])
    seconds = {k: float(sum(r[f"time/{k}_s"] for r in steps)) for k in ("value", "sample", "estimator", "update")}
    probes = [r for r in steps if "baseline/mse_true" in r]
    curve = [[r["rollouts"], r["eval/accuracy"]] for r in records if "eval/accuracy" in r]
    return {
        "method": method, "seed": seed, "rollouts": records[-1]["rollouts"], "steps": len(steps),
        "final_accuracy": curve[-1][1], "curve": curve,
        "grad_norm": [[r["rollouts"], r["train/grad_norm"]] for r in steps],
        "grad_norm_mean": float(grad.mean()), "grad_norm_var": float(grad.var()),
        "grad_norm_cv": float(grad.std() / grad.mean()) if grad.mean() > 0 else float("nan"),
        "baseline_mse_true": float(np.mean([r["baseline/mse_true"] for r in probes])) if probes else None,
        "group_mean_mse_true": float(np.mean([r["baseline/mse_true_group_mean"] for r in probes])) if probes else None,
        "prior_mse_true": (float(np.mean([r["value/mse_true"] for r in probes]))
                           if probes and "value/mse_true" in probes[0] else None),
        "baseline_error": [[r["rollouts"], r["baseline/mse_true"]] for r in probes],
        "rollouts_per_prompt_mean": float(sum(r["budget/rollouts_step"] for r in steps)
                                          / max(1, sum(r["budget/groups"] for r in steps))),
        "rollouts_per_step": [[r["rollouts"], r["budget/rollouts_step"], r["budget/groups"]] for r in steps],
        "seconds": seconds, "rollouts_per_s": records[-1]["rollouts"] / max(sum(seconds.values()), 1e-9),
    }


def run_demo(out, settings: DemoSettings = DemoSettings(), *, progress=None) -> dict:
    """Train every (method, seed), then write ``demo.json``, ``summary.md`` and the plots under ``out``.

    Parameters
    ----------
    out : path
    settings : DemoSettings
    progress : callable ``(method, seed, rollouts_spent)``, optional
        Called as runs advance (the CLI's progress bar).

    Returns
    -------
    dict
        The contents of ``demo.json``.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    jobs = settings.configs()
    # Before any worker starts: load the value model (a bad name fails here), fill its embedding cache
    # and compute the one warm-up all runs share (the workers then only read both caches).
    first = jobs[0][2]
    task = ArithmeticTask.build(first.task.n_train, first.task.n_eval, first.task.seed)
    ValueModel.load(settings.value_model).text_difficulty([p.prompt for p in task.train + task.eval])
    warm_start(first, task, out / "warmup")
    runs = run_in_workers(_run_one, [(m.label, s, cfg, out / "runs" / f"{m.slug}_seed{s}", out / "warmup")
                                     for m, s, cfg in jobs], settings.workers, progress)
    report = {"settings": {**settings.__dict__, "seeds": list(settings.seeds)},
              "methods": {m.label: {"run_folder": f"runs/{m.slug}_seed<seed>", "settings": m.settings} for m in METHOD_LIST},
              "runs": runs,
              "summary": summarise(runs, settings)}
    (out / "demo.json").write_text(json.dumps(report, indent=1))
    (out / "summary.md").write_text(markdown(report))
    plot(report, out)
    return report



def mean_curve(runs: list[dict], grid: np.ndarray) -> np.ndarray:
    """Accuracy per seed interpolated linearly onto a rollout grid, shape (seeds, grid).

    Evaluations happen at the first step boundary past each mark, so they sit slightly after the grid.
    """
    return np.stack([np.interp(grid, [c[0] for c in r["curve"]], [c[1] for c in r["curve"]]) for r in runs])


def _grid(runs: list[dict], total: int, every: int) -> np.ndarray:
    """Evaluation marks 0, every, 2 every, ... below ``total``, then the last rollout count any run reached."""
    return np.append(np.arange(0, total, every), max(r["rollouts"] for r in runs))


def summarise(runs: list[dict], settings: DemoSettings) -> dict:
    """Per method: final accuracy (mean, std over seeds), rollouts to reach the reference's final accuracy,
    gradient-norm spread, baseline error, rollouts per prompt and throughput."""
    grid = _grid(runs, settings.total_rollouts, settings.eval_every_rollouts)
    by_method = {m: [r for r in runs if r["method"] == m] for m in METHODS}
    target = float(np.mean([r["final_accuracy"] for r in by_method[REFERENCE]]))
    out = {"reference": REFERENCE, "reference_final_accuracy": target, "methods": {}}
    for m, rs in by_method.items():
        acc = mean_curve(rs, grid).mean(0)
        reached = np.flatnonzero(acc >= target)
        final = np.array([r["final_accuracy"] for r in rs])
        gn_cv = np.array([r["grad_norm_cv"] for r in rs])
        gn_var = np.array([r["grad_norm_var"] for r in rs])
        seconds = {k: float(np.sum([r["seconds"][k] for r in rs])) for k in rs[0]["seconds"]}
        out["methods"][m] = {
            "final_accuracy_mean": float(final.mean()), "final_accuracy_std": float(final.std(ddof=1)) if len(final) > 1 else 0.0,
            "final_accuracy_per_seed": final.tolist(),
            "rollouts_to_reference": int(grid[reached[0]]) if len(reached) else None,
            "grad_norm_mean": float(np.mean([r["grad_norm_mean"] for r in rs])),
            "grad_norm_var_mean": float(gn_var.mean()), "grad_norm_cv_mean": float(gn_cv.mean()),
            "baseline_mse_true": _mean_or_none([r["baseline_mse_true"] for r in rs]),
            "group_mean_mse_true": _mean_or_none([r["group_mean_mse_true"] for r in rs]),
            "prior_mse_true": _mean_or_none([r["prior_mse_true"] for r in rs]),
            "rollouts_per_prompt_mean": float(np.mean([r["rollouts_per_prompt_mean"] for r in rs])),
            "rollouts_per_s": float(np.mean([r["rollouts_per_s"] for r in rs])),
            "time_split": {k: v / max(sum(seconds.values()), 1e-9) for k, v in seconds.items()},
        }
    return out


def _mean_or_none(values):
    values = [v for v in values if v is not None]
    return float(np.mean(values)) if values else None


def markdown(report: dict) -> str:
    """The human summary of a demo report."""
    s, st = report["summary"], report["settings"]
    lines = [
        "# v05 demo: V0.5 vs GRPO and DAPO at equal rollouts", "",
        f"Task: built-in arithmetic chains, {st['n_train_prompts']} training prompts, held-out accuracy "
        f"(mean of sampled answers). {st['total_rollouts']} rollouts per run, seeds {st['seeds']}; "
        "every run starts from the same warm-up policy.", "",
        f"Reference: {s['reference']} final accuracy {s['reference_final_accuracy']:.3f}.", "",
        "| method | final acc. (mean ± sd) | rollouts to reference | grad-norm mean | grad-norm var | grad-norm CV "
        "| baseline MSE vs truth | group-mean MSE | prior MSE | rollouts/prompt | rollouts/s "
        "| time: value/sample/estimator/update |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for m, r in s["methods"].items():
        split = "/".join(f"{100 * r['time_split'][k]:.0f}%" for k in ("value", "sample", "estimator", "update"))
        lines.append(
            f"| {m} | {r['final_accuracy_mean']:.3f} ± {r['final_accuracy_std']:.3f} "
            f"| {r['rollouts_to_reference'] or 'not reached'} "
            f"| {r['grad_norm_mean']:.3f} | {r['grad_norm_var_mean']:.4f} | {r['grad_norm_cv_mean']:.3f} "
            f"| {_fmt(r['baseline_mse_true'])} | {_fmt(r['group_mean_mse_true'])} | {_fmt(r['prior_mse_true'])} "
            f"| {r['rollouts_per_prompt_mean']:.2f} | {r['rollouts_per_s']:.0f} | {split} |"
        )
    lines += ["", "Grad-norm mean, var and CV (sd / mean): of the gradient norm before clipping over a run's steps, "
              "averaged over seeds. Rollouts/prompt: a run's rollouts over its trained prompts, averaged over seeds.",
              "", "Per-seed final accuracy:", ""]
    for m, r in s["methods"].items():
        lines.append(f"- {m}: " + ", ".join(f"{a:.3f}" for a in r["final_accuracy_per_seed"]))
    lines += ["", "Plots: accuracy.png, grad_norm.png, baseline_error.png, rollouts_per_prompt.png.", ""]
    return "\n".join(lines)


def _fmt(x) -> str:
    return "-" if x is None else f"{x:.4f}"


def plot(report: dict, out: Path) -> None:
    """Write the four PNG plots of a demo report."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    st, runs = report["settings"], report["runs"]
    grid = _grid(runs, st["total_rollouts"], st["eval_every_rollouts"])
    methods = list(report["methods"])

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for m in methods:
        acc = mean_curve([r for r in runs if r["method"] == m], grid)
        mu, sd = acc.mean(0), acc.std(0)
        ax.plot(grid, mu, marker="o", ms=3, color=COLORS[m], label=m)
        ax.fill_between(grid, mu - sd, mu + sd, color=COLORS[m], alpha=0.15)
    ax.set(xlabel="rollouts spent", ylabel="held-out accuracy",
           title=f"Held-out accuracy (mean ± sd over {len(st['seeds'])} seeds)")
    _finish(fig, ax, out / "accuracy.png")

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for m in methods:
        for i, r in enumerate(x for x in runs if x["method"] == m):
            xy = np.array(r["grad_norm"])
            ax.plot(*_smooth(xy[:, 0], xy[:, 1], 5), color=COLORS[m], alpha=0.6, lw=1, label=m if i == 0 else None)
    ax.set(xlabel="rollouts spent", ylabel="gradient norm (before clipping; 5-step mean)",
           title="Gradient norm over training, every seed")
    _finish(fig, ax, out / "grad_norm.png")

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for m in methods:
        pts = np.array([p for r in runs if r["method"] == m for p in r["baseline_error"]])
        if len(pts):
            ax.scatter(pts[:, 0], pts[:, 1], s=10, color=COLORS[m], alpha=0.6, label=m)
    _log_y(ax)
    ax.set(xlabel="rollouts spent", ylabel="baseline MSE vs re-measured pass rate",
           title="Baseline error per step (truth: fresh rollouts of the same prompts)")
    _finish(fig, ax, out / "baseline_error.png")

    plot_rollouts_per_prompt(report, out / "rollouts_per_prompt.png")


def plot_rollouts_per_prompt(report: dict, path: Path) -> None:
    """One histogram per method (shared axis, bars centred on their values): the rollouts a step spent per
    trained prompt; each panel's mean is the summary table's."""
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    runs, methods = report["runs"], list(report["methods"])
    per_prompt = {}
    for m in methods:
        steps = [p for r in runs if r["method"] == m for p in r["rollouts_per_step"]]
        per_prompt[m] = np.array([spent / max(groups, 1) for _, spent, groups in steps])
    width = 0.5
    top = max(float(v.max()) for v in per_prompt.values() if len(v))
    edges = np.arange(-width / 2, top + width, width)  # bins centred on multiples of 0.5: a bar sits on its value
    fig, axes = plt.subplots(len(methods), 1, figsize=(7, 1.1 * len(methods) + 1.3), sharex=True, squeeze=False)
    for ax, m in zip(axes[:, 0], methods):
        v = per_prompt[m]
        ax.hist(v, bins=edges, weights=np.full(len(v), 1.0 / max(len(v), 1)), color=COLORS[m], alpha=0.8)
        mean = report["summary"]["methods"][m]["rollouts_per_prompt_mean"]
        ax.set_title(f"{m}: mean {mean:.2f}", loc="left", fontsize=9)
        ax.set(ylim=(0, 1.05), ylabel="share")
        ax.grid(alpha=0.3)
    axes[-1, 0].xaxis.set_major_locator(MaxNLocator(integer=True))
    axes[-1, 0].set_xlabel("rollouts spent per trained prompt, per step (DAPO: dropped groups included)")
    fig.suptitle("Rollouts per prompt (share of steps)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _log_y(ax) -> None:
    """Log-scale y axis with ticks at 1, 2, 3 and 5 times the powers of ten, labelled as plain numbers (0.02,
    0.03, 0.05), so that even a range narrower than a decade shows several labels."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    ax.set_yscale("log")
    ax.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 3.0, 5.0)))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda y, _: f"{y:g}"))
    ax.yaxis.set_minor_formatter(NullFormatter())


def _finish(fig, ax, path: Path) -> None:
    """Grid, legend outside the axes (it never covers data), tight layout; save the figure and free it."""
    import matplotlib.pyplot as plt

    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0, fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)


def _smooth(x: np.ndarray, y: np.ndarray, w: int) -> tuple[np.ndarray, np.ndarray]:
    """Running mean over ``w`` points (only where the window is full), with the matching x."""
    if len(y) < w:
        return x, y
    return x[w // 2 : len(x) - (w - 1 - w // 2)], np.convolve(y, np.ones(w) / w, mode="valid")
