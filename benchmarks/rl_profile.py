"""Throughput and time split of the RL engine: V0.5 (k_init=4 + OSLA) against GRPO at the same group size.

Prints, per method, rollouts per second over the timed phases and the share of time in value-model
prediction, sampling, the estimator and the update (summed over steps, seeds one after the other, one
torch thread). Also writes the numbers as JSON.

    python benchmarks/rl_profile.py --rollouts 20000 --seeds 0,1,2 --out runs/bench/rl_profile
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from v05.rl.config import TrainConfig
from v05.rl.loop import train

METHODS = {
    "V0.5 k_init=4 + OSLA": {"estimator": "v05", "allocation": "osla", "group_size": 4},
    "V0.5 k=4 fixed": {"estimator": "v05", "group_size": 4},
    "GRPO k=4": {"estimator": "grpo", "group_size": 4},
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
    results = {}
    for name, fields in METHODS.items():
        seconds, rollouts, steps, wall = dict.fromkeys(PHASES, 0.0), 0, 0, 0.0
        per_seed = []
        for seed in seeds:
            cfg = TrainConfig(**fields, seed=seed, total_rollouts=args.rollouts, eval_every_rollouts=args.rollouts,
                              value_model=args.value_model)
            run_dir = args.out / f"{name.replace(' ', '_').replace('=', '').replace('+', '')}_seed{seed}"
            start = time.perf_counter()
            result = train(cfg, run_dir, warmup_cache=args.out / "warmup", tensorboard=False)
            wall += time.perf_counter() - start
            run_seconds = {p: sum(r[f"time/{p}_s"] for r in result.records[1:]) for p in PHASES}
            per_seed.append(result.rollouts / sum(run_seconds.values()))
            for p in PHASES:
                seconds[p] += run_seconds[p]
            rollouts += result.rollouts
            steps += len(result.records) - 1
        total = sum(seconds.values())
        results[name] = {
            "rollouts_per_s": rollouts / total, "rollouts_per_s_per_seed": per_seed,
            "split": {p: seconds[p] / total for p in PHASES}, "ms_per_step": {p: 1000 * seconds[p] / steps for p in PHASES},
            "steps": steps, "rollouts": rollouts, "wall_s_including_eval_and_setup": wall,
        }
        r = results[name]
        print(f"{name:22s} {r['rollouts_per_s']:7.0f} rollouts/s (seeds: {', '.join(f'{x:.0f}' for x in per_seed)}; "
              f"sd {np.std(per_seed):.0f})  split " + " ".join(f"{p} {100 * r['split'][p]:4.1f}%" for p in PHASES)
              + "  ms/step " + " ".join(f"{p} {r['ms_per_step'][p]:.1f}" for p in PHASES))
    (args.out / "rl_profile.json").write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()},
                                                           "results": results}, indent=1))


if __name__ == "__main__":
    main()
