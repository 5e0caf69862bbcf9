"""Two processes (torchrun, gloo on CPU): every process takes the same top-up decision from gathered data,
gets an equal share of the new rows, and trains on its own slice of the advantages."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("trl", reason="needs the v05[trl] extra (trl, datasets, accelerate)")

pytestmark = pytest.mark.slow
HERE = Path(__file__).resolve().parent


def test_two_processes_agree_on_top_ups_and_train_on_their_own_slices(tmp_path):
    torchrun = Path(sys.executable).with_name("torchrun")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]),
           "OMP_NUM_THREADS": "1"}
    run = subprocess.run([str(torchrun), "--standalone", "--nproc_per_node", "2", str(HERE / "trl_two_processes.py"),
                          str(tmp_path)], env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert ranks[0]["processes"] == 2
    for key in ("prompts", "group", "advantage", "rounds"):
        assert ranks[0][key] == ranks[1][key], key
    # 4 prompts x 4 in the first round (8 rows per process), then 2 prompts x 8 more (8 rows per process)
    group = np.array(ranks[0]["group"])
    assert len(group) == 32 and ranks[0]["rounds"] == 1
    counts = np.bincount(group)
    assert sorted(counts.tolist()) == [4, 4, 12, 12]
    adv = np.array(ranks[0]["advantage"])
    for r, rank in enumerate(ranks):
        mine = np.concatenate([adv[8 * r:8 * (r + 1)], adv[16 + 8 * r:16 + 8 * (r + 1)]])
        np.testing.assert_allclose(rank["local_advantages"], mine, rtol=1e-6)
