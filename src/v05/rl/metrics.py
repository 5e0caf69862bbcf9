"""Per-step metric records: a JSONL file (the source of truth) mirrored to TensorBoard.

Every record is one JSON line with ``step``, ``rollouts`` and namespaced scalars (``train/``, ``baseline/``,
``budget/``, ``value/``, ``eval/``, ``time/``; each documented in docs/rl.md). On resume the lines after
the checkpoint's step (including a line cut short by a kill) are dropped, and TensorBoard purges the same
steps, so the log reads as if the run had never stopped.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import time
from pathlib import Path


def read_records(path) -> list[dict]:
    """All complete records of a metrics file (a torn last line is ignored)."""
    path = Path(path)
    if not path.is_file():
        return []
    out = []
    for line in path.read_text().splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            break
    return out


class MetricsLog:
    """Append records to ``<run>/metrics.jsonl`` and ``<run>/tb``; resume drops records after ``keep_through``.

    Parameters
    ----------
    run_dir : path
    keep_through : int or None
        Step of the checkpoint resumed from: records with a larger step are removed. None starts afresh.
    tensorboard : bool
        Also write TensorBoard event files.
    """

    def __init__(self, run_dir, *, keep_through: int | None, tensorboard: bool = True):
        self.path = Path(run_dir) / "metrics.jsonl"
        kept = [] if keep_through is None else [r for r in read_records(self.path) if r["step"] <= keep_through]
        tmp = self.path.with_name("metrics.jsonl.tmp")
        tmp.write_text("".join(json.dumps(r) + "\n" for r in kept))
        os.replace(tmp, self.path)
        self.records = kept
        self.writer = None
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(str(Path(run_dir) / "tb"), purge_step=None if keep_through is None else keep_through + 1)

    def log(self, record: dict) -> None:
        """Append one record (``step`` and ``rollouts`` plus scalar metrics)."""
        self.records.append(record)
        with self.path.open("a") as f:
            f.write(json.dumps(record) + "\n")
        if self.writer is not None:
            for key, value in record.items():
                if "/" in key and isinstance(value, (int, float)) and math.isfinite(value):
                    self.writer.add_scalar(key, value, record["step"])

    def close(self) -> None:
        """Flush TensorBoard."""
        if self.writer is not None:
            self.writer.close()


class PhaseTimer:
    """Seconds per phase of a step, wall-clock and CPU (this process): ``with timer("sample"): ...``.

    CPU seconds count only the work of this process, so on a machine shared with other jobs they measure
    the engine's cost where wall-clock seconds also measure the load.
    """

    PHASES = ("value", "sample", "estimator", "update")

    def __init__(self):
        self.seconds: dict[str, float] = dict.fromkeys(self.PHASES, 0.0)
        self.cpu_seconds: dict[str, float] = dict.fromkeys(self.PHASES, 0.0)

    @contextlib.contextmanager
    def __call__(self, phase: str):
        start, start_cpu = time.perf_counter(), time.process_time()
        try:
            yield
        finally:
            self.seconds[phase] += time.perf_counter() - start
            self.cpu_seconds[phase] += time.process_time() - start_cpu
