"""``v05 demo`` and ``v05 train`` from the command line, asserting on what they write and how they fail."""

import json
import os
import subprocess
import sys
import tomllib

import pytest
from typer.testing import CliRunner

from v05_testing.cli import one_red_line
from v05_testing.engine import tiny
from v05.cli import app
from v05.rl.loop import train

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
    assert sorted(p.name for p in (out / "runs").iterdir()) == ["dapo_k16_seed0", "grpo_k16_seed0", "grpo_k4_seed0",
                                                                "v05_osla_seed0"]


def _invoke(args):
    return CliRunner().invoke(app, [str(a) for a in args])


@pytest.mark.parametrize(("args", "text"), [
    (["--group-size", "0"], "method.group_size == 0, must be >= 1"),
    (["--set", "k_max=16"], "setting 'k_max' is now osla.k_max"),
    (["--set", "osla.k_max=12"], "osla settings are read only with method.allocation='osla'"),
    (["--set", "osla.k_mx=16", "--allocation", "osla"], "unknown setting(s) ['osla.k_mx']"),
    (["--set", "k_max"], "--set 'k_max': expected section.key=value"),
    (["--config", "missing.toml"], "config file missing.toml not found"),
])
def test_train_rejects_bad_settings_before_anything_else(tmp_path, args, text):
    one_red_line(_invoke(["train", *args, "--out", tmp_path / "run"]), text)
    assert not (tmp_path / "run").exists()


def test_train_refuses_a_run_folder_that_is_a_file_and_a_missing_value_model_before_the_warm_up(tmp_path):
    (tmp_path / "file").write_text("x")
    one_red_line(_invoke(["train", "--out", tmp_path / "file"]), "--out " + str(tmp_path / "file") + " is a file")
    one_red_line(_invoke(["train", "--set", "prior.value_model=nope", "--out", tmp_path / "run"]),
                  "unknown value model 'nope'")
    assert not list((tmp_path / "run").glob("warmup_*"))  # failed before the warm-up


def test_show_config_prints_every_setting_with_the_changes_applied(tmp_path):
    (tmp_path / "c.toml").write_text('[method]\nestimator = "v05"\nallocation = "osla"\n')
    result = _invoke(["train", "--config", tmp_path / "c.toml", "--set", "osla.k_max=12", "--set", "osla.max_rounds=2",
                      "--show-config"])
    assert result.exit_code == 0, result.output
    settings = tomllib.loads(result.stdout)
    assert settings["osla"]["k_max"] == 12 and settings["osla"]["max_rounds"] == 2
    assert settings["method"]["allocation"] == "osla" and "# Rollouts every prompt gets in the first round." in result.stdout
    assert "--show-config" in _invoke(["train", "--help"]).stdout


def test_train_resumes_says_so_and_names_corrupt_checkpoints(tmp_path):
    cfg = tiny(**{"total_rollouts": 480, "method.estimator": "grpo", "checkpoint_every": 2})
    (tmp_path / "cfg.json").write_text(json.dumps(cfg.to_dict()))

    def crash(record):
        if record["step"] == 5:
            raise RuntimeError("simulated crash")

    with pytest.raises(RuntimeError):
        train(cfg, tmp_path / "run", on_record=crash, tensorboard=False)
    root = tmp_path / "run" / "checkpoints"
    (root / "step_000004" / "state.json").write_text('{"format": "v05.rl.chec')  # cut short
    result = _invoke(["train", "--config", tmp_path / "cfg.json", "--out", tmp_path / "run", "--no-progress"])
    assert result.exit_code == 0, result.output
    assert f"checkpoint 4 is corrupt: {root / 'step_000004' / 'state.json'} is not valid JSON" in result.stdout
    assert "resuming from step 2" in result.stdout and "final held-out accuracy" in result.stdout
    for folder in root.glob("step_*"):
        (folder / "weights.safetensors").write_bytes(b"")
    one_red_line(_invoke(["train", "--config", tmp_path / "cfg.json", "--out", tmp_path / "run"]),
                  f"no intact checkpoint in {root}: checkpoint 15 is corrupt")


def test_demo_rejects_bad_options_in_one_line(tmp_path):
    one_red_line(_invoke(["demo", "--seeds", "0,x", "--out", tmp_path]), "--seeds '0,x': expected comma-separated integers")
    one_red_line(_invoke(["demo", "--rollouts", "0", "--out", tmp_path]), "total_rollouts == 0, must be >= 1")
    one_red_line(_invoke(["demo", "--value-model", "nope", "--out", tmp_path]), "unknown value model 'nope'")
    (tmp_path / "file").write_text("x")
    one_red_line(_invoke(["demo", "--out", tmp_path / "file"]), "is a file")
