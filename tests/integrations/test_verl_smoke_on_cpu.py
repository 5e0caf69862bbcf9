"""``make gpu-smoke DRY_RUN=1`` on CPU: the verl smoke run's dry run composes verl's real config with the run's
own overrides, checks it and prints one verdict line, starting nothing and writing nothing; the make target
runs the TRL and the verl smoke runs, with --dry-run passed to both."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("verl", reason="needs the v05[verl] extra (verl[verl-core]==0.9.1)")

ROOT = Path(__file__).resolve().parents[2]
SMOKE = ROOT / "examples" / "verl" / "smoke_gpu.sh"
BIN = str(Path(sys.executable).parent)


def _env(tmp_path, **extra) -> dict:
    path = os.pathsep.join(p for p in [str(ROOT / "src"), os.environ.get("PYTHONPATH", "")] if p)
    return {**os.environ, "PYTHONPATH": path, "PYTHON": sys.executable, "WORK": str(tmp_path / "work"), **extra}


@pytest.mark.slow
def test_verl_smoke_dry_run_composes_the_real_config_and_prints_one_verdict(tmp_path):
    out = subprocess.run(["bash", str(SMOKE), "--dry-run"], cwd=tmp_path, env=_env(tmp_path), capture_output=True,
                         text=True, timeout=600)
    assert out.returncode == 0, out.stdout + out.stderr[-2000:]
    assert out.stdout.splitlines() == [out.stdout.strip()]  # one line
    assert out.stdout.startswith("verl smoke (dry run): PASS (config composed and checked, nothing started: "
                                 "verl config OK: estimator v05 (v05.baselines 'v05_eb'), "
                                 "rollouts osla k_init 2 -> k_max 6")
    assert list(tmp_path.iterdir()) == []  # no data prepared, no Hydra folder, no outputs/


@pytest.mark.slow
def test_verl_smoke_dry_run_fails_with_one_line_naming_the_setting(tmp_path):
    wrapper = tmp_path / "python"  # the run's python, with one bad +v05 value appended to the launcher's overrides
    wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@" +v05.rollouts.osla.rule=fast\n')
    wrapper.chmod(0o755)
    out = subprocess.run(["bash", str(SMOKE), "--dry-run"], cwd=tmp_path, env=_env(tmp_path, PYTHON=str(wrapper)),
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 1
    [line] = out.stdout.strip().splitlines()
    assert line.startswith("verl smoke (dry run): FAIL (error: v05.rollouts.osla") and "rule='fast'" in line


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
@pytest.mark.parametrize("dry_run", [True, False])
def test_make_gpu_smoke_runs_both_smoke_runs(dry_run):
    args = ["make", "-n", "gpu-smoke", f"BIN={BIN}"] + (["DRY_RUN=1", "STAMP="] if dry_run else [])
    out = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    recipe, flag = " ".join(out.stdout.split()), " --dry-run" if dry_run else ""
    assert f"{BIN}/python examples/trl_gpu_qwen3_4b.py --smoke{flag} || status=1" in recipe
    assert f"PYTHON={BIN}/python bash examples/verl/smoke_gpu.sh{flag} || status=1" in recipe


TRL_SMOKE = ROOT / "examples" / "trl_gpu_qwen3_4b.py"


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("make") is None or '"--smoke"' not in TRL_SMOKE.read_text(),
                    reason="needs make and the TRL smoke run (examples/trl_gpu_qwen3_4b.py --smoke)")
def test_make_gpu_smoke_dry_run_prints_one_verdict_per_framework(tmp_path):
    out = subprocess.run(["make", "--no-print-directory", "gpu-smoke", "DRY_RUN=1", "STAMP=", f"BIN={BIN}"], cwd=ROOT,
                         env=_env(tmp_path), capture_output=True, text=True, timeout=900)
    verdicts = [line for line in out.stdout.splitlines()
                if line.startswith(("TRL smoke (dry run):", "verl smoke (dry run):"))]
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert [v.split(" ")[0] for v in verdicts] == ["TRL", "verl"]
    assert all(" (dry run): PASS (" in v for v in verdicts)
