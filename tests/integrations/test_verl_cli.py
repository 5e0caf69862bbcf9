"""``python -m v05.integrations.verl.main`` with a bad V0.5 estimator name: one error line, exit code 2, before
Ray starts (issue 17.3: a ``v05``-prefixed typo used to pass the check and leave Ray waiting)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

pytest.importorskip("verl", reason="needs the v05[verl] extra (verl[verl-core]==0.9.1)")


def test_an_unknown_v05_estimator_is_one_line_before_ray(tmp_path):
    """One launch (importing verl takes seconds); the osla mode's message is checked in-process."""
    env = {**os.environ, "RAY_ADDRESS": "", "PYTHONWARNINGS": "ignore"}
    res = subprocess.run([sys.executable, "-m", "v05.integrations.verl.main", "algorithm.adv_estimator=v05_nope"],
                         check=False, capture_output=True, text=True, timeout=240, env=env,
                         cwd=tmp_path)  # hydra writes outputs/ in the working directory
    assert res.returncode == 2, res.stderr[-2000:]
    errors = [line for line in res.stderr.splitlines() if "error" in line.lower()]
    assert len(errors) == 1 and errors[0].startswith("error: algorithm.adv_estimator='v05_nope' is not a V0.5 "
                                                     "estimator; V0.5's in verl: v05, v05_bernoulli"), res.stderr[-2000:]
    assert "v05_grpo" in errors[0] and "verl's own estimator" not in errors[0]
    assert "Traceback" not in res.stderr and "Ray instance" not in res.stdout + res.stderr  # ray.init never ran
