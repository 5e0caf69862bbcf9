"""The training loop end to end on tiny sizes: every method path, metrics, checkpoints and exact resume."""

import json
import math
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from v05_testing.engine import tiny
from v05.rl.loop import train
from v05.rl.metrics import read_records
from v05.value.prior import ValueModelPrior


def _prior(cfg, vm):
    p = cfg.prior
    return ValueModelPrior(vm, context_size=p.context_size, history_steps=p.history_steps, history_block=p.history_block)


def _final_policy(run_dir):
    latest = (run_dir / "checkpoints" / "latest").read_text().strip()
    tensors = load_file(str(run_dir / "checkpoints" / latest / "weights.safetensors"))
    return {k[len("policy."):]: v for k, v in tensors.items() if k.startswith("policy.")}


def _check_records(records, cfg):
    assert records[0]["step"] == 0 and "eval/accuracy" in records[0]
    steps = records[1:]
    assert steps and records[-1]["rollouts"] >= cfg.total_rollouts
    assert sum(r["budget/rollouts_step"] for r in steps) == records[-1]["rollouts"]
    for r in steps:
        for key, value in r.items():
            assert math.isfinite(value), (key, value)
        assert {"train/grad_norm", "train/loss", "baseline/adv_abs_mean", "budget/k_mean", "time/sample_s"} <= set(r)
    assert "eval/accuracy" in records[-1]


def test_grpo_run_trains_the_policy(tmp_path):
    cfg = tiny(**{"method.estimator": "grpo", "optim.kl_coef": 0.05, "eval.probe_every": 2})
    result = train(cfg, tmp_path, tensorboard=True)
    _check_records(result.records, cfg)
    warm = load_file(str(next(tmp_path.glob("warmup_*.safetensors"))))
    final = _final_policy(tmp_path)
    assert all(not torch.equal(warm[k], final[k]) for k in warm)  # every parameter moved
    assert all(r["budget/k_mean"] == 4 for r in result.records[1:])
    assert any("baseline/mse_true" in r for r in result.records) and any(r["train/kl"] > 0 for r in result.records[1:])
    assert list((tmp_path / "tb").glob("events.*"))
    assert read_records(tmp_path / "metrics.jsonl") == result.records
    assert result.curve[0][0] == 0 and result.final_accuracy == result.curve[-1][1]


def test_v05_with_osla_uses_the_value_model(tmp_path, tiny_value_model):
    cfg = tiny(**{"method.estimator": "v05", "method.allocation": "osla", "eval.probe_every": 2})
    result = train(cfg, tmp_path, prior_source=_prior(cfg, tiny_value_model), tensorboard=False)
    _check_records(result.records, cfg)
    steps = result.records[1:]
    assert all({"value/prior_mean", "value/mse_observed", "baseline/fusion_weight"} <= set(r) for r in steps)
    assert all(4 <= r["budget/k_mean"] <= 16 for r in steps)
    assert any("value/mse_true" in r for r in steps)


class ConfidentlyWrongPrior:
    """Predicts a pass rate of 1 everywhere (the tiny policy solves almost nothing), with no doubt."""

    def predict(self, history, step, targets):
        return np.ones(len(targets)), np.zeros(len(targets))


def test_osla_tops_up_where_the_prior_is_contradicted(tmp_path):
    cfg = tiny(**{"method.estimator": "v05_paper", "method.allocation": "osla", "osla.max_rounds": None})
    result = train(cfg, tmp_path, prior_source=ConfidentlyWrongPrior(), tensorboard=False)
    _check_records(result.records, cfg)
    steps = result.records[1:]
    assert any(r["budget/k_max"] == 16 and r["budget/rounds"] == 13 for r in steps)  # uncapped: one per round
    assert sum(r["budget/rollouts_step"] for r in steps) > len(steps) * cfg.rollouts_per_step_min


def test_osla_max_rounds_caps_the_rounds_of_every_step(tmp_path):
    cfg = tiny(**{"method.estimator": "v05_paper", "method.allocation": "osla", "osla.max_rounds": 2})
    result = train(cfg, tmp_path, prior_source=ConfidentlyWrongPrior(), tensorboard=False)
    _check_records(result.records, cfg)
    steps = result.records[1:]
    assert all(r["budget/rounds"] <= 3 for r in steps)
    assert any(r["budget/k_max"] == 16 for r in steps)  # the same top-ups, in fewer rounds


def test_dapo_dynamic_sampling_counts_dropped_rollouts(tmp_path):
    cfg = tiny(**{"total_rollouts": 400, "method.estimator": "dapo", "method.allocation": "dynamic",
                  "method.group_size": 4, "optim.clip_high": 0.28})
    result = train(cfg, tmp_path, tensorboard=False)
    _check_records(result.records, cfg)
    for r in result.records[1:]:
        assert r["budget/rollouts_step"] == r["budget/rounds"] * cfg.rollouts_per_step_min
        assert r["budget/groups"] <= cfg.method.prompts_per_step
    assert any(r["budget/rounds"] > 1 for r in result.records[1:])  # some all-equal groups were replaced


def test_a_dynamic_step_that_keeps_nothing_spends_its_rollouts_and_skips_the_update(tmp_path):
    cfg = tiny(**{"method.estimator": "dapo", "method.allocation": "dynamic", "warmup.steps": 0,
                  "method.max_resample_rounds": 1})  # an untrained policy answers nothing right: all groups all-0
    result = train(cfg, tmp_path, tensorboard=False)
    _check_records(result.records, cfg)
    assert all(r["budget/groups"] == 0 and r["train/grad_norm"] == 0.0 and r["budget/rounds"] == 2
               for r in result.records[1:])


def test_resume_with_another_config_is_refused(tmp_path):
    cfg = tiny(**{"method.estimator": "grpo"})
    first = train(cfg, tmp_path, tensorboard=False)
    assert train(cfg, tmp_path, tensorboard=False).records == first.records  # finished: nothing more to do
    with pytest.raises(ValueError, match=r"different config \(settings \['optim.lr'\] differ\)"):
        train(cfg.with_settings({"optim.lr": 1e-2}), tmp_path, tensorboard=False)


def _comparable(records):
    return [{k: v for k, v in r.items() if not k.startswith("time/")} for r in records]


@pytest.mark.slow
def test_sigkill_then_resume_reproduces_the_uninterrupted_run(tmp_path):
    cfg = tiny(**{"total_rollouts": 1280, "method.estimator": "rloo", "checkpoint_every": 2, "threads": 1})
    reference = train(cfg, tmp_path / "reference", tensorboard=False)

    (tmp_path / "cfg.json").write_text(json.dumps(cfg.to_dict()))
    run_dir = tmp_path / "killed"
    cmd = [sys.executable, "-c", "from v05.cli import app; app()", "train", "--config", str(tmp_path / "cfg.json"),
           "--out", str(run_dir), "--no-progress"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    latest = run_dir / "checkpoints" / "latest"
    while proc.poll() is None:
        if latest.is_file() and latest.read_text().strip() >= "step_000006":
            os.kill(proc.pid, signal.SIGKILL)
            break
        time.sleep(0.002)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, proc.stderr.read().decode()
    killed_at = len(read_records(run_dir / "metrics.jsonl"))
    assert killed_at < len(reference.records)  # it really stopped part-way

    resumed = train(cfg, run_dir, tensorboard=False)
    assert _comparable(resumed.records) == _comparable(reference.records)
    final, expected = _final_policy(run_dir), _final_policy(tmp_path / "reference")
    assert all(torch.equal(final[k], expected[k]) for k in expected)


def test_v05_resume_after_a_crash_restores_the_value_model_history(tmp_path, tiny_value_model):
    """A run that dies mid-way (here: an exception after step 5; checkpoint at step 4) resumes exactly,
    including the outcome history the value model reads."""
    cfg = tiny(**{"total_rollouts": 480, "method.estimator": "v05", "method.allocation": "osla", "checkpoint_every": 4})
    reference = train(cfg, tmp_path / "reference", prior_source=_prior(cfg, tiny_value_model), tensorboard=False)

    def crash(record):
        if record["step"] == 5:
            raise RuntimeError("simulated crash")

    with pytest.raises(RuntimeError, match="simulated crash"):
        train(cfg, tmp_path / "crashed", prior_source=_prior(cfg, tiny_value_model), on_record=crash, tensorboard=False)
    resumed = train(cfg, tmp_path / "crashed", prior_source=_prior(cfg, tiny_value_model), tensorboard=False)
    assert len(reference.records) > 6
    assert _comparable(resumed.records) == _comparable(reference.records)
