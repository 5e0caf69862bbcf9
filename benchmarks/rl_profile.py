"""Throughput, time split and gradient-norm spread of the RL engine: V0.5 against GRPO at the same group size.

Prints, per method, rollouts per second (rollouts per step over the sum of the median per-step times of
value-model prediction, sampling, the estimator and the update; one torch thread), those median times,
the per-step gradient norm's mean, variance and coefficient of variation (averaged over seeds), and the
final held-out accuracy (mean ± sd over seeds). Dr. GRPO (the group mean without the std division) isolates the
baseline's effect on gradient noise from GRPO's std scaling. Also writes the numbers as JSON.

    python benchmarks/rl_profile.py --rollouts 20000 --seeds 0,1,2 --out runs/bench/rl_profile
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from v05.rl.config import TrainConfig
from v05.rl.loop import train

METHODS = {
    "V0.5 k_init=4 + OSLA": {"estimator": "v05", "allocation": "osla", "group_size": 4},
    "V0.5 k=4 fixed": {"estimator": "v05", "group_size": 4},
    "V0.5 k_init=4 + OSLA, 4 per round": {"estimator": "v05", "allocation": "osla", "group_size": 4, "osla_per_round": 4},
    "V0.5 k_init=4 + OSLA rule eb": {"estimator": "v05", "allocation": "osla", "group_size": 4, "osla_rule": "eb"},
    "GRPO k=4": {"estimator": "grpo", "group_size": 4},
    "Dr. GRPO k=4": {"estimator": "dr_grpo", "group_size": 4},
    "GRPO k=16": {"estimator": "grpo", "group_size": 16},
}
PHASES = ("value", "sample", "estimator", "update")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rollouts", type=int, default=20000)
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--value-model", default="default")
    parser.add_argument("--out", type=Path, default=Path("runs/bench/rl_profile"))
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    args.out.mkdir(parents=True, exist_ok=True)
    # Seeds outer, methods inner: on a shared machine, load changes over minutes, and interleaving spreads
    # it evenly over the methods. Per-step phase times are summarised by their median for the same reason.
    runs: dict[str, list] = {name: [] for name in METHODS}
    for seed in seeds:
        for name, fields in METHODS.items():
            cfg = TrainConfig(**fields, seed=seed, total_rollouts=args.rollouts, eval_every_rollouts=args.rollouts,
                              value_model=args.value_model)
            run_dir = args.out / f"{''.join(c if c.isalnum() else '_' for c in name)}_seed{seed}"
            runs[name].append(train(cfg, run_dir, warmup_cache=args.out / "warmup", tensorboard=False))
    results = {}
    for name, rs in runs.items():
        steps = [r for res in rs for r in res.records[1:]]
        median_ms = {p: 1000 * float(np.median([r[f"time/{p}_s"] for r in steps])) for p in PHASES}
        rollouts_per_step = float(np.mean([r["budget/rollouts_step"] for r in steps]))
        total = {p: sum(r[f"time/{p}_s"] for r in steps) for p in PHASES}
        grad = [np.array([r["train/grad_norm"] for r in res.records[1:]]) for res in rs]
        final = [res.final_accuracy for res in rs]
        results[name] = {
            "rollouts_per_s_median_step": rollouts_per_step / (sum(median_ms.values()) / 1000),
            "rollouts_per_s_total": sum(res.rollouts for res in rs) / sum(total.values()),
            "median_ms_per_step": median_ms, "split_of_total": {p: total[p] / sum(total.values()) for p in PHASES},
            "rollouts_per_step": rollouts_per_step, "steps": len(steps),
            "grad_norm_mean": float(np.mean([g.mean() for g in grad])), "grad_norm_var": float(np.mean([g.var() for g in grad])),
            "grad_norm_cv": float(np.mean([g.std() / g.mean() for g in grad])),
            "final_accuracy": final,
        }
        r = results[name]
        print(f"{name:36s} {r['rollouts_per_s_median_step']:6.0f} rollouts/s (median step; total {r['rollouts_per_s_total']:.0f}) "
              f"{r['rollouts_per_step']:5.0f} rollouts/step  median ms/step " + " ".join(f"{p} {median_ms[p]:.1f}" for p in PHASES)
              + f" | grad-norm mean {r['grad_norm_mean']:.3f} var {r['grad_norm_var']:.4f} cv {r['grad_norm_cv']:.3f}"
              + f" | final acc {np.mean(final):.3f} ± {np.std(final, ddof=1) if len(final) > 1 else 0:.3f}")
    (args.out / "rl_profile.json").write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()},
                                                           "results": results}, indent=1))


if __name__ == "__main__":
    main()
