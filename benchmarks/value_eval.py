"""Quality of the value model against baselines, on the shared data, with honest leave-policies-out training.

Settings
- v0_demo, split=column: each policy's 512 context prompts -> its 64 query prompts (V0's own split).
- v0_demo, split=half: a random half of each policy's 576 prompts as context, the other half as queries.
  For both, the model that predicts a policy was meta-trained on the other 5 policies' rows minus every row
  on that policy's prompts (strictly cold text prior); other policies' rows remain available as history.
- mmlupro_29models (models view), split=half: leave-models-out (5 folds): the model that predicts a policy
  was meta-trained without it; the other 28 models' outcomes on the same questions are the history.
Each setting writes value.json / value.md / calibration.png under --out/<setting>/.

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/value_eval.py --out runs/bench/value
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from v05.data import load_mmlupro, load_v0_demo
from v05.value import evaluate, leave_policies_out
from v05.value.report import markdown_table, write_report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--out", type=Path, default=Path("runs/bench/value"))
    parser.add_argument("--settings", default="v0_column,v0_half,mmlupro")
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
