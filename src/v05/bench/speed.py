"""Speed and memory of the estimators on 10 million rollouts in ragged groups of 1-16.

Times each estimator end to end through the public entry point (validation and group factorisation
included), best of ``--repeats``, and its peak extra memory (tracemalloc, which sees numpy's buffers).
Writes speed.json, speed.md and speed.png under --out. Goal: the default ``v05`` within 3x the plain mean.

    v05 bench speed --rollouts 10000000 --out runs/bench/speed
"""

from __future__ import annotations

import time
import tracemalloc
from pathlib import Path

import numpy as np

from v05.baselines import DEFAULT, compute, get_estimator
from v05.bench.report_files import write_documents

ESTIMATORS = ("mean", "dr_grpo", "grpo", "dapo", "v05_paper", "v05_bernoulli", "v05_prior_var", "v05_eb_beta", "v05",
              "v05_eb_loo", "v05_eb_mix")


def make_batch(n: int, rng: np.random.Generator) -> dict:
    """Ragged groups of 1-16 rollouts (contiguous, as trainers lay them out), 0/1 rewards, per-group prior."""
    sizes = rng.integers(1, 17, size=n // 8 + 16)
    sizes = sizes[: np.searchsorted(np.cumsum(sizes), n) + 1]
    group = np.repeat(np.arange(len(sizes)), sizes)[:n]
    n_groups = group[-1] + 1
    truth = rng.random(n_groups)
    prior = np.clip(truth + rng.normal(0, 0.1, n_groups), 0, 1)
    return {
        "rewards": (rng.random(n) < truth[group]).astype(np.float64),
        "group": group,
        "prior": prior[group],
        "prior_var": np.full(n, 0.01),
    }


def _args(name: str, batch: dict) -> tuple[dict, dict]:
    est = get_estimator(name)
    kwargs = {"std_scale": "batch"} if name == "grpo" else {}  # group std is undefined for singletons
    return dict(rewards=batch["rewards"], group=batch["group"],
                prior=batch["prior"] if est.uses_prior else None,
                prior_var=batch["prior_var"] if est.needs_prior_var else None), kwargs


def measure(names: tuple[str, ...], batch: dict, repeats: int) -> list[dict]:
    """Best-of-``repeats`` time per estimator, taken round-robin so load on the machine hits all alike."""
    times = {name: [] for name in names}
    for _ in range(repeats):
        for name in names:
            args, kwargs = _args(name, batch)
            t0 = time.perf_counter()
            compute(name, **args, **kwargs)
            times[name].append(time.perf_counter() - t0)
    rows = []
    for name in names:
        args, kwargs = _args(name, batch)
        tracemalloc.start()
        compute(name, **args, **kwargs)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        best = min(times[name])
        rows.append({"estimator": name, "seconds": best, "rollouts_per_s": len(batch["rewards"]) / best,
                     "peak_mib": peak / 2**20})
    return rows


def run(rollouts: int, repeats: int) -> dict:
    """Time every estimator of :data:`ESTIMATORS` on one batch of ``rollouts`` (seed 0), best of ``repeats``."""
    batch = make_batch(rollouts, np.random.default_rng(0))
    n_groups = int(batch["group"][-1]) + 1
    rows = measure(ESTIMATORS, batch, repeats)
    base = next(r for r in rows if r["estimator"] == "mean")["seconds"]
    for r in rows:
        r["x_mean"] = r["seconds"] / base
    return {"rollouts": rollouts, "groups": n_groups, "default": DEFAULT, "rows": rows,
            "input_mib": sum(v.nbytes for v in batch.values()) / 2**20}


def markdown(result: dict, repeats: int) -> str:
    lines = [f"{result['rollouts']:,} rollouts in {result['groups']:,} ragged groups (1-16), best of {repeats}; "
             f"inputs {result['input_mib']:.0f} MiB. `v05` = `{DEFAULT}`.", "",
             "| estimator | seconds | rollouts/s | x mean | peak extra MiB |", "|---|---|---|---|---|"]
    lines += [f"| {r['estimator']} | {r['seconds']:.3f} | {r['rollouts_per_s']:.3g} | {r['x_mean']:.2f} | "
              f"{r['peak_mib']:.0f} |" for r in result["rows"]]
    return "\n".join(lines) + "\n"


def write_report(result: dict, out: Path, *, repeats: int) -> dict[str, Path]:
    """Write speed.json, speed.md and speed.png into ``out``; returns their paths."""
    json_path, md_path = write_documents(out, {"speed.json": result, "speed.md": markdown(result, repeats)}).values()
    paths = {"json": json_path, "markdown": md_path, "png": Path(out) / "speed.png"}
    plot(result, paths["png"])
    return paths


def plot(result: dict, path: Path) -> None:
    """Million rollouts per second of every estimator (the default and the plain mean highlighted)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = result["rows"]
    fig, ax = plt.subplots(figsize=(7, 3.4))
    ax.barh([r["estimator"] for r in rows], [r["rollouts_per_s"] / 1e6 for r in rows],
            color=["tab:orange" if r["estimator"] in ("v05", "mean") else "tab:blue" for r in rows])
    ax.set(xlabel="million rollouts per second (higher is better)",
           title=f"{result['rollouts'] / 1e6:g}M rollouts, ragged groups 1-16")
    ax.invert_yaxis()
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
