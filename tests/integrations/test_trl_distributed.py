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


def two_processes(tmp_path, *args) -> list[dict]:
    """What each process of ``trl_two_processes.py`` wrote."""
    torchrun = Path(sys.executable).with_name("torchrun")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]),
           "OMP_NUM_THREADS": "1"}
    run = subprocess.run([str(torchrun), "--standalone", "--nproc_per_node", "2", str(HERE / "trl_two_processes.py"),
                          str(tmp_path), *args], env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    return [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]


def test_two_processes_agree_on_top_ups_and_train_on_their_own_slices(tmp_path):
    ranks = two_processes(tmp_path)
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


def test_reinforce_ada_shares_the_kept_rows_evenly_over_the_processes(tmp_path):
    ranks = two_processes(tmp_path, "reinforce_ada")
    for key in ("prompts", "group", "advantage", "rounds"):
        assert ranks[0][key] == ranks[1][key], key
    group, adv = np.array(ranks[0]["group"]), np.array(ranks[0]["advantage"])
    assert np.bincount(group).tolist() == [8] * 4  # 4 + 4 each: constant rewards never meet the exit condition
    pool = {int(i): row for rank in ranks for i, row in rank["pool_rows"].items()}  # every row, by global index
    assert sorted(pool) == list(range(32))
    kept = [sorted(int(i) for i in rank["kept_rows"]) for rank in ranks]
    assert len(kept[0]) == len(kept[1]) == 4 and kept[0][-1] < kept[1][0]  # the kept rows in order, 4 each
    assert np.bincount(group[kept[0] + kept[1]]).tolist() == [2] * 4  # n = 2 a prompt
    for rank in ranks:
        assert all(row == pool[int(i)] for i, row in rank["kept_rows"].items())  # moved across processes intact
        np.testing.assert_allclose(rank["local_advantages"], adv[[int(i) for i in rank["kept_rows"]]], rtol=1e-6)
    tokens = sum(len(row) for rank in ranks for row in rank["kept_rows"].values())
    assert ranks[0]["num_items_in_batch"] == ranks[1]["num_items_in_batch"] == tokens
