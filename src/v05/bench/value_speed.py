"""Prediction speed and memory of the value model in the RL engine's setting.

One call = a 256-prompt context and 64 targets (and optionally a history of earlier checkpoints), as the RL
loop makes every step. Reported: targets per second and context+target prompts per second, with embeddings
already memoised (the steady state: prompts recur) and with every text embedded afresh (MiniLM, no cache),
plus the peak Python heap of one call (tracemalloc) and the process's peak RSS. The memoised calls are timed
with the in-context correction of the text prior off and on (``adapt``), whatever the model's setting.

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/value_speed.py
"""

from __future__ import annotations

import argparse
import json
import resource
import time
import tracemalloc
from pathlib import Path

import numpy as np
import torch
from threadpoolctl import threadpool_limits

from v05.data import load_v0_demo
from v05.value import ValueModel


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--model", default="default")
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--out", type=Path, default=None, help="Optional JSON file for the figures.")
    args = parser.parse_args()
    torch.set_num_threads(1)
    threadpool_limits(1)  # a multi-threaded BLAS call on shared cores can be 20x slower
    table = load_v0_demo(args.data / "v0_demo")
    rng = np.random.default_rng(0)
    rows = rng.permutation(len(table))
    ctx, tgt, hist = rows[:256], rows[256:320], rows[320:320 + 5 * 512]
    c_txt, c_p, t_txt = table.prompt[ctx].tolist(), table.pass_rate[ctx], table.prompt[tgt].tolist()
    history = table.select(hist)
    figures = {"threads": torch.get_num_threads(), "n_context": 256, "n_targets": 64, "n_history": len(hist)}

    fresh = ValueModel.load(args.model, cache_dir=False)
    t0 = time.perf_counter()
    fresh.predict(c_txt, c_p, t_txt)
    figures["cold_call_with_embedding_s"] = time.perf_counter() - t0  # includes loading MiniLM once
    fresh = ValueModel.load(args.model, cache_dir=False)
    fresh.embed(["warm-up"])  # load the encoder, then time embedding + prediction of 320 new texts
    t0 = time.perf_counter()
    fresh.predict(c_txt, c_p, t_txt)
    dt = time.perf_counter() - t0
    figures["with_embedding"] = {"call_s": dt, "targets_per_s": 64 / dt, "prompts_per_s": 320 / dt}

    vm = fresh  # every text now memoised
    for adapt in (False, True):
        vm.adapt = adapt
        for name, hist_table in (("embedded_no_history", None), ("embedded_history", history)):
            vm.predict(c_txt, c_p, t_txt, history=hist_table)
            t0 = time.perf_counter()
            for _ in range(args.repeats):
                vm.predict(c_txt, c_p, t_txt, history=hist_table)
            dt = (time.perf_counter() - t0) / args.repeats
            figures[f"{name}_adapt_{adapt}".lower()] = {"call_s": dt, "targets_per_s": 64 / dt, "prompts_per_s": 320 / dt}
    tracemalloc.start()
    vm.predict(c_txt, c_p, t_txt, history=history)
    figures["peak_heap_mb_one_call_with_history"] = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    figures["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(figures, indent=2))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
