"""Quality of the value model against baselines, on the shared data, with honest leave-policies-out training.

Settings
- v0_demo, split=column: each policy's 512 context prompts -> its 64 query prompts (V0's own split).
- v0_demo, split=half: a random half of each policy's 576 prompts as context, the other half as queries.
  For both, the model that predicts a policy was meta-trained on the other 5 policies' rows minus every row
  on that policy's prompts (strictly cold text prior); other policies' rows remain available as history.
- mmlupro_29models (models view), split=half: leave-models-out (5 folds): the model that predicts a policy
  was meta-trained without it; the other 28 models' outcomes on the same questions are the history.
Each setting writes value.json / value.md / calibration.png under --out/<setting>/.
- priors: the MSE against the pass rate of ``bench_priors`` (the priors of ``v05 bench baseline --prior
  value``) on v0_demo (shipped default weights, which saw the table, and leave-one-policy-out refits) and
  on mmlupro's halves view (default weights), next to the per-policy mean pass rate; --out/priors.json.

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/value_eval.py --out runs/bench/value
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from v05.data import load_mmlupro, load_v0_demo
from v05.bench.value_eval import bench_priors, evaluate, leave_policies_out
from v05.bench.value_report import markdown_table, write_report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--out", type=Path, default=Path("runs/bench/value"))
    parser.add_argument("--settings", default="v0_column,v0_half,mmlupro,priors")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(1)
    settings = args.settings.split(",")
    if any(s.startswith("v0") for s in settings):
        v0 = load_v0_demo(args.data / "v0_demo")
        t0 = time.perf_counter()
        v0_models = leave_policies_out(v0, n_folds=6, seed=args.seed, unseen_prompts=True)
        print(f"v0_demo: 6 leave-one-policy-out fits in {time.perf_counter() - t0:.1f} s")
        how = "6 folds, one policy and all its prompts left out of training"
        for split in ("column", "half"):
            if f"v0_{split}" in settings:
                run(v0, v0_models, split, args, f"v0_{split}", how)
    if "mmlupro" in settings:
        mm = load_mmlupro(args.data / "mmlupro_29models", view="models")
        t0 = time.perf_counter()
        mm_models = leave_policies_out(mm, n_folds=5, seed=args.seed)
        print(f"mmlupro: 5 leave-models-out fits in {time.perf_counter() - t0:.1f} s")
        run(mm, mm_models, "half", args, "mmlupro", "5 folds of models left out")
    if "priors" in settings:
        prior_quality(args)


def prior_quality(args):
    v0 = load_v0_demo(args.data / "v0_demo")
    halves = load_mmlupro(args.data / "mmlupro_29models", view="halves")
    figures = {}
    for name, table, kwargs in [("v0_demo default", v0, {}), ("v0_demo refit 6 folds", v0, {"refit_folds": 6}),
                                ("mmlupro halves default", halves, {})]:
        prior, var = bench_priors(table, seed=args.seed, **kwargs)
        mean = {pol: table.pass_rate[table.policy == pol].mean() for pol in table.policies}
        policy_mean = np.array([mean[pol] for pol in table.policy])
        figures[name] = {"prior_mse": float(np.mean((prior - table.pass_rate) ** 2)),
                         "policy_mean_mse": float(np.mean((policy_mean - table.pass_rate) ** 2)),
                         "mean_predicted_var": float(np.mean(var))}
        print(name, {k: round(v, 4) for k, v in figures[name].items()}, flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "priors.json").write_text(json.dumps(figures, indent=2) + "\n")


def run(table, models, split, args, name, how):
    t0 = time.perf_counter()
    result = evaluate(table, models, split=split, seed=args.seed)
    meta = {"setting": name, "split": split, "training": how, "seed": args.seed,
            "command": f"HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/value_eval.py --settings {name} --seed {args.seed}"}
    doc = write_report(result, args.out / name, title=f"{name}: value model vs baselines ({how})", meta=meta)
    print(markdown_table(doc))
    print(f"({time.perf_counter() - t0:.1f} s)\n", flush=True)


if __name__ == "__main__":
    main()
