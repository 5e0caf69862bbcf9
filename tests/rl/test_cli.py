"""``v05 demo`` and ``v05 train`` from the command line, asserting on what they write."""

import json
import os
import subprocess
import sys

import pytest

CLI = [sys.executable, "-c", "from v05.cli import app; app()"]
ENV = {**os.environ, "HF_HUB_OFFLINE": "1"}  # the value model's encoder loads from the installed package only


@pytest.mark.slow
def test_demo_quick_writes_a_complete_report(tmp_path):
    out = tmp_path / "demo"
    cmd = CLI + ["demo", "--quick", "--seeds", "0", "--rollouts", "1024", "--eval-every", "512",
                 "--train-prompts", "64", "--workers", "1", "--out", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=170, env=ENV)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads((out / "demo.json").read_text())
    runs = report["runs"]
    assert {r["method"] for r in runs} == {"V0.5 k_init=4 + OSLA", "GRPO k=4", "GRPO k=16", "DAPO k=16"}
    for r in runs:
        assert r["seed"] == 0 and r["rollouts"] >= 1024
        assert 0.0 <= r["final_accuracy"] <= 1.0 and r["final_accuracy"] == r["curve"][-1][1]
        assert r["curve"][0][0] == 0 and all(a[0] < b[0] for a, b in zip(r["curve"], r["curve"][1:]))
    v05 = next(r for r in runs if r["method"].startswith("V0.5"))
    assert v05["prior_mse_true"] is not None and v05["rollouts_per_prompt_mean"] >= 4  # probed at step 4
    for name in ("summary.md", "accuracy.png", "grad_norm.png", "baseline_error.png", "rollouts_per_prompt.png"):
        assert (out / name).stat().st_size > 0
    assert "GRPO k=16" in (out / "summary.md").read_text()


def test_train_rejects_a_bad_config_before_training(tmp_path):
    proc = subprocess.run(CLI + ["train", "--group-size", "0", "--out", str(tmp_path / "run")],
                          capture_output=True, text=True, timeout=60, env=ENV)
    assert proc.returncode == 2
    assert "group_size = 0: must be >= 1" in proc.stdout
    assert not (tmp_path / "run").exists()


def test_demo_rejects_bad_seeds(tmp_path):
    proc = subprocess.run(CLI + ["demo", "--seeds", "0,x", "--out", str(tmp_path)], capture_output=True, text=True,
                          timeout=60, env=ENV)
    assert proc.returncode == 2 and "expected comma-separated integers" in proc.stdout + proc.stderr

