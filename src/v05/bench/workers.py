"""Run a benchmark's training jobs in spawned worker processes, with their progress reported live.

The demo, the regime map and the RL^V comparison all train many independent runs; each worker reports
``progress`` tuples through one queue, which the parent drains while it waits (so a progress bar moves),
and a worker's error is re-raised in the parent.
"""

from __future__ import annotations

import multiprocessing as mp
import queue


def run_in_workers(run_one, jobs: list[tuple], workers: int, progress=None) -> list:
    """``[run_one((*job, messages)) for job in jobs]``, computed in ``workers`` spawned processes.

    ``run_one`` must be a top-level (picklable) function; ``messages`` is a queue it may ``put`` tuples on,
    each passed to ``progress(*item)`` in the parent. Results come back in the order of ``jobs``.
    """
    ctx = mp.get_context("spawn")
    manager = ctx.Manager()
    messages = manager.Queue()
    try:
        with ctx.Pool(min(workers, len(jobs))) as pool:
            pending = pool.map_async(run_one, [(*job, messages) for job in jobs], chunksize=1)
            while not pending.ready():
                _drain(messages, progress, timeout=0.2)
            results = pending.get()  # re-raises a worker's error
        _drain(messages, progress, timeout=0)
    finally:
        manager.shutdown()
    return results


def _drain(messages, progress, timeout: float) -> None:
    try:
        while True:
            item = messages.get(timeout=timeout)
            if progress is not None:
                progress(*item)
    except queue.Empty:
        return
