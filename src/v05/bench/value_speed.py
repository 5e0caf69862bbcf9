"""Prediction speed and memory of the value model in the RL engine's setting.

One call = a 256-prompt context and 64 targets (and optionally a history of earlier checkpoints), as the RL
loop makes every step. Reported: targets per second and context+target prompts per second, with embeddings
already memoised (the steady state: prompts recur) and with every text embedded afresh (MiniLM, no cache),
plus the peak Python heap of one call (tracemalloc) and the process's peak RSS. The memoised calls are timed
with the in-context correction of the text prior off and on (``adapt``), whatever the model's setting, and
with the leave-one-out correction with surface features (``correction="surface"``, keys ``..._adapt_surface``).

    v05 bench value-speed --out runs/bench/value_speed.json
"""

from __future__ import annotations

import resource
import time
import tracemalloc
from pathlib import Path

import numpy as np
import torch
from threadpoolctl import threadpool_limits

from v05.bench.report_files import write_documents
from v05.data import load_v0_demo
from v05.value import ValueModel


def run(data: Path, model: str = "default", repeats: int = 20) -> dict:
    """The figures (seconds per call, targets and prompts per second, memory) of the value model ``model`` on
    v0_demo prompts from the shared data folder ``data``, each memoised call timed as the mean of ``repeats``."""
    torch.set_num_threads(1)
    threadpool_limits(1)  # a multi-threaded BLAS call on shared cores can be 20x slower
    table = load_v0_demo(Path(data) / "v0_demo")
    rng = np.random.default_rng(0)
    rows = rng.permutation(len(table))
    ctx, tgt, hist = rows[:256], rows[256:320], rows[320:320 + 5 * 512]
    c_txt, c_p, t_txt = table.prompt[ctx].tolist(), table.pass_rate[ctx], table.prompt[tgt].tolist()
    history = table.select(hist)
    figures = {"threads": torch.get_num_threads(), "n_context": 256, "n_targets": 64, "n_history": len(hist)}

    fresh = ValueModel.load(model, cache_dir=False)
    t0 = time.perf_counter()
    fresh.predict(c_txt, c_p, t_txt)
    figures["cold_call_with_embedding_s"] = time.perf_counter() - t0  # includes loading MiniLM once
    fresh = ValueModel.load(model, cache_dir=False)
    fresh.embed(["warm-up"])  # load the encoder, then time embedding + prediction of 320 new texts
    t0 = time.perf_counter()
    fresh.predict(c_txt, c_p, t_txt)
    dt = time.perf_counter() - t0
    figures["with_embedding"] = {"call_s": dt, "targets_per_s": 64 / dt, "prompts_per_s": 320 / dt}

    vm = fresh  # every text now memoised
    for adapt, correction, label in ((False, "embedding", "false"), (True, "embedding", "true"), (True, "surface", "surface")):
        vm.adapt, vm.correction = adapt, correction
        for name, hist_table in (("embedded_no_history", None), ("embedded_history", history)):
            vm.predict(c_txt, c_p, t_txt, history=hist_table)
            t0 = time.perf_counter()
            for _ in range(repeats):
                vm.predict(c_txt, c_p, t_txt, history=hist_table)
            dt = (time.perf_counter() - t0) / repeats
            figures[f"{name}_adapt_{label}"] = {"call_s": dt, "targets_per_s": 64 / dt, "prompts_per_s": 320 / dt}
    tracemalloc.start()
    vm.predict(c_txt, c_p, t_txt, history=history)
    figures["peak_heap_mb_one_call_with_history"] = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    figures["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return figures


def write_report(figures: dict, path: Path) -> dict[str, Path]:
    """Write the figures to the JSON file ``path`` (its folder made if missing); returns its path."""
    path = Path(path)
    return {"json": write_documents(path.parent, {path.name: figures}, indent=2, end="\n")[path.name]}
