"""The regime map: conditions, paired intervals, and a tiny end-to-end run with its report."""

import json

import numpy as np
import pytest
from scipy import stats

from v05.bench import regimes as rg
from v05.bench.regimes_report import write_report
from v05_testing.engine import TINY


def test_every_default_run_is_a_valid_config_and_the_fresh_pool_is_large_enough():
    settings = rg.RegimeSettings()
    assert len(settings.jobs()) == 2 * 2 * 2 * 5 * 3
    for c, m, s in settings.jobs():
        cfg = settings.config(c, m, s)
        assert cfg.total_rollouts == settings.total_rollouts and cfg.seed == s
    osla = settings.config((2, "fresh", "u-shaped"), "V0.5 + OSLA", 0)
    assert (osla.osla.k_init, osla.osla.k_max, osla.task.stream, osla.warmup.max_terms) == (2, 8, "fresh", 4)
    assert settings.config((4, "recurring", "spread"), "V0.5 oracle prior", 1).prior.source == "exact"


def test_the_later_methods_are_valid_runs_but_not_in_the_registered_default():
    assert rg.RegimeSettings().methods == rg.REGISTERED
    later = rg.RegimeSettings(methods=("GRPO", "Dr. GRPO", "V0.5 leave-one-out"))
    estimators = {m: later.config((2, "recurring", "spread"), m, 0).method.estimator for m in later.methods}
    assert estimators == {"GRPO": "grpo", "Dr. GRPO": "dr_grpo", "V0.5 leave-one-out": "v05_eb_loo"}


def test_paired_interval_is_the_t_interval():
    d = np.array([0.01, -0.02, 0.03, 0.005])
    mean, lo, hi = rg.paired_interval(d)
    half = stats.t.ppf(0.975, 3) * d.std(ddof=1) / 2
    assert (mean, lo, hi) == pytest.approx((d.mean(), d.mean() - half, d.mean() + half))
    assert np.isnan(rg.paired_interval(np.array([0.1]))[1])


@pytest.mark.parametrize(("change", "message"), [
    ({"streams": ("once",)}, "streams: 'once' is not one of"),
    ({"methods": ("RLOO",)}, "methods must include 'GRPO'"),
    ({"group_sizes": (1,)}, "group size == 1, must be >= 2"),
])
def test_bad_settings_are_named(change, message):
    with pytest.raises(ValueError, match=message):
        rg.RegimeSettings(**change)


@pytest.mark.slow
def test_a_tiny_map_runs_and_reports(tmp_path):
    extra = {**TINY, "task.n_train": 128, "total_rollouts": 96, "eval.every_rollouts": 96}
    extra.pop("eval.every_rollouts")
    settings = rg.RegimeSettings(group_sizes=(2,), difficulties=("spread",), methods=("GRPO", "V0.5 oracle prior"),
                                 seeds=(0, 1), total_rollouts=96, recurring_prompts=64, fresh_prompts=128, workers=1,
                                 extra=tuple(extra.items()))
    done = []
    report = rg.run(settings, tmp_path, progress=done.append)
    assert done.count(None) == len(report["runs"]) == 2 * 2 * 2
    assert all(0 <= r["held_out"] <= 1 for r in report["runs"])
    grpo = [c for c in report["cells"] if c["method"] == "GRPO"]
    assert all(c["diff_to_grpo"] == 0 for c in grpo)
    start = report["start"][json.dumps([2, "fresh", "spread"])]
    assert sum(start["pool_histogram"]) == 128
    paths = write_report(report, tmp_path)
    assert "| k=2, fresh, spread |" in paths["markdown"].read_text() and paths["png"].stat().st_size > 5000
