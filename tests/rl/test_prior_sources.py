"""The engine's value-free prior sources: prior.source = 'history' (each prompt's own outcomes) and 'none'."""

import numpy as np
import pytest

from v05_testing.engine import tiny
from v05.rl.loop import train


def _comparable(records):
    return [{k: v for k, v in r.items() if not k.startswith("time/")} for r in records]


@pytest.mark.parametrize("settings, named", [
    ({"method.estimator": "v05"}, "method.estimator='v05' fuses a prior"),
    ({"method.estimator": "grpo", "method.allocation": "osla"}, "method.allocation='osla' plans top-ups"),
])
def test_none_with_a_method_that_needs_a_prior_is_refused_naming_both_settings(settings, named):
    with pytest.raises(ValueError, match=f"prior.source='none' gives no prior, but {named}"):
        tiny(**{"prior.source": "none", **settings})


def test_none_with_a_value_free_estimator_runs_without_a_prior(tmp_path):
    cfg = tiny(**{"prior.source": "none", "method.estimator": "eb_batch"})
    assert not cfg.needs_prior
    result = train(cfg, tmp_path, tensorboard=False)
    steps = result.records[1:]
    assert steps and all("value/prior_mean" not in r for r in steps)
    assert all(np.isfinite(r["train/loss"]) for r in steps)


def test_history_prior_run_logs_the_prior_and_resumes_exactly(tmp_path):
    """prior.source='history' under v05 + OSLA: the prior metrics are logged, and a run that dies after step 5
    (checkpoint at step 4) resumes to the same records: the history it reads is the checkpointed one."""
    cfg = tiny(**{"total_rollouts": 480, "method.estimator": "v05", "method.allocation": "osla",
                  "prior.source": "history", "checkpoint_every": 4, "eval.probe_every": 2})
    reference = train(cfg, tmp_path / "reference", tensorboard=False)
    steps = reference.records[1:]
    assert len(steps) > 6
    assert all({"value/prior_mean", "value/prior_sd", "value/mse_observed", "baseline/fusion_weight"} <= set(r)
               for r in steps)
    assert any("value/mse_true" in r for r in steps)
    assert all(0 < r["value/prior_mean"] < 1 and r["value/prior_sd"] > 0 for r in steps)

    def crash(record):
        if record["step"] == 5:
            raise RuntimeError("simulated crash")

    with pytest.raises(RuntimeError, match="simulated crash"):
        train(cfg, tmp_path / "crashed", on_record=crash, tensorboard=False)
    resumed = train(cfg, tmp_path / "crashed", tensorboard=False)
    assert _comparable(resumed.records) == _comparable(reference.records)
