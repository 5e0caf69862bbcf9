"""``python -m v05.integrations.verl.main``: --help leads with V0.5's settings, --dry-run composes verl's real
config, checks it and prints the V0.5 part without starting anything, a bad setting is one red line with exit
code 2, and nothing lands in ``outputs/`` of the current folder (every test runs in a fresh tmp cwd)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("verl", reason="needs the v05[verl] extra (verl[verl-core]==0.9.1)")
import yaml
from verl.trainer import main_ppo

from v05.integrations.verl import main as launcher
from v05.integrations.verl.config import SAMPLER_NAME, SAMPLER_PATH

OSLA = ["algorithm.adv_estimator=v05", "trainer.v1.trainer_mode=v05_sync",
        f"trainer.v1.sampler.custom_sampler.path={SAMPLER_PATH}",
        f"trainer.v1.sampler.custom_sampler.name={SAMPLER_NAME}", "+v05.rollouts.mode=osla"]
SRC = str(Path(__file__).resolve().parents[2] / "src")


@pytest.fixture(autouse=True)
def tmp_cwd(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    try:
        launcher.cli(list(argv))
        code = 0
    except SystemExit as e:
        code = e.code
    out = capsys.readouterr()
    return code, out.out, out.err


def test_help_leads_with_v05_settings_and_estimators(capsys):
    code, out, _ = run_cli(capsys, "--help")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].startswith("usage: python -m v05.integrations.verl.main [--dry-run]")
    assert "  +v05.rollouts.osla.k_max=16" in lines and "  +v05.prior_key=prior_value" in lines
    assert any(line.split()[:1] == ["v05_eb"] and "[prior; +v05.options.tau2=null]" in line for line in lines)
    assert any(line.split()[:1] == ["v05"] and "= v05_eb" in line for line in lines)
    assert "--help-verl" in out and len(lines) < 120  # not verl's 1,100 lines


def test_help_verl_is_verls_own_help(capsys, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["main.py"])
    code, out, _ = run_cli(capsys, "--help-verl")
    assert code == 0 and "Powered by Hydra" in out and "actor_rollout_ref:" in out


def test_dry_run_prints_the_resolved_v05_part_and_starts_nothing(capsys, tmp_cwd):
    code, out, err = run_cli(capsys, "--dry-run", *OSLA, "+v05.rollouts.osla.k_max=8", "+v05.rollouts.osla.rule=eb",
                             "actor_rollout_ref.rollout.n=4")
    assert code == 0, err
    *body, last = out.strip().splitlines()
    part = yaml.safe_load("\n".join(body))
    assert part["v05"]["rollouts"]["mode"] == "osla" and part["v05"]["rollouts"]["osla"]["k_max"] == 8
    assert part["v05"]["rollouts"]["osla"]["k_init"] == 4 and part["v05"]["prior_key"] == "prior_value"  # defaults
    assert part["algorithm"]["v05_estimator"] == "v05_eb" and part["trainer.v1.trainer_mode"] == "v05_sync"
    assert part["trainer.v1.sampler.custom_sampler"] == {"path": SAMPLER_PATH, "name": SAMPLER_NAME}
    assert last.startswith("verl config OK: estimator v05 (v05.baselines 'v05_eb'), rollouts osla k_init 4 -> k_max 8")
    assert list(tmp_cwd.iterdir()) == []


@pytest.mark.parametrize("argv, message", [
    ([*OSLA, "+v05.rollouts.osla.k_max=2"], "error: v05.rollouts.osla: k_max (2) must be >= k_init (4)"),
    (["algorithm.adv_estimator=v05", "trainer.v1.trainer_mode=sync", "actor_rollout_ref.rollout.n=4"],
     "error: algorithm.adv_estimator=v05 fuses a prior"),
    (["algorithm.adv_estimator=v05", "trainer.v1.trainer_mode=v05_sync"],  # verl's default rollout.n is 1
     "error: estimator 'v05' is not defined on groups of 1 rollout(s)"),
    (["algorithm.adv_estimatr=v05"], "error: verl's config: Could not override 'algorithm.adv_estimatr'"),
    ([*OSLA, "algorithm.adv_estimator=v05_grpo", "trainer.v1.trainer_mode=sync"],
     "error: v05.rollouts.mode=osla sets per-prompt rollout counts, which only the v05_sync trainer does"),
])
@pytest.mark.parametrize("dry_run", [True, False])
def test_a_bad_setting_is_one_red_line_and_exit_2_before_anything_starts(capsys, tmp_cwd, monkeypatch, argv, message,
                                                                         dry_run):
    monkeypatch.setattr(main_ppo.main, "__wrapped__", lambda config: pytest.fail("verl was started"))
    code, out, err = run_cli(capsys, *(["--dry-run"] if dry_run else []), *argv)
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and err.startswith(message) and "Traceback" not in err
    assert list(tmp_cwd.iterdir()) == []


def test_a_checked_run_hands_the_config_to_verl_with_hydra_files_under_the_run_folder(capsys, tmp_cwd, monkeypatch):
    started = []
    monkeypatch.setattr(main_ppo.main, "__wrapped__", started.append)  # verl's run body: Ray, workers, training
    monkeypatch.setattr(sys, "argv", ["main.py"])
    code, _, err = run_cli(capsys, *OSLA, "trainer.project_name=p", "trainer.experiment_name=e")
    assert code == 0, err
    assert len(started) == 1 and started[0].v05.rollouts.mode == "osla"
    assert not (tmp_cwd / "outputs").exists()
    saved = list((tmp_cwd / "checkpoints" / "p" / "e" / "hydra").glob("*/*/.hydra/config.yaml"))
    assert len(saved) == 1 and yaml.safe_load(saved[0].read_text())["v05"]["rollouts"]["mode"] == "osla"


def test_other_hydra_flags_go_to_hydra_as_given(capsys, monkeypatch):
    monkeypatch.setattr(main_ppo.main, "__wrapped__", lambda config: pytest.fail("verl was started"))
    monkeypatch.setattr(sys, "argv", ["main.py"])
    code, out, _ = run_cli(capsys, "--cfg", "job", "+v05.rollouts.osla.k_max=8")
    assert code == 0 and yaml.safe_load(out)["v05"] == {"rollouts": {"osla": {"k_max": 8}}}


def test_a_config_name_verl_does_not_have_is_one_line(capsys):
    code, _, err = run_cli(capsys, "--dry-run", "--config-name", "ppo_trainr", *OSLA)
    assert code == 2 and err.startswith("error: verl's config: Cannot find primary config 'ppo_trainr'")


def test_dry_run_refuses_other_hydra_flags(capsys):
    code, _, err = run_cli(capsys, "--dry-run", "--cfg", "job", *OSLA)
    assert code == 2 and "--dry-run takes verl overrides and --config-name only" in err


@pytest.mark.slow
def test_the_module_runs_as_a_command(tmp_cwd):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([SRC, os.environ.get("PYTHONPATH", "")])}
    out = subprocess.run([sys.executable, "-m", "v05.integrations.verl.main", "--dry-run", *OSLA], cwd=tmp_cwd,
                         env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1].startswith("verl config OK:")
    assert list(tmp_cwd.iterdir()) == []
