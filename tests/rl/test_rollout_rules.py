"""The rollout rule of the engine's planner by one setting (``method.rollout_rule``): each rule drives a tiny run,
OSLA stays the default, bad names and options are one error before any work."""

import numpy as np
import pytest
from typer.testing import CliRunner

from v05_testing.cli import one_red_line
from v05_testing.engine import tiny
from v05.budget import OslaConfig
from v05.cli import app
from v05.rl.config import TrainConfig
from v05.rl.loop import train


class ConfidentlyWrongPrior:
    """Predicts a pass rate of 1 everywhere (the tiny policy solves almost nothing), with no doubt."""

    def predict(self, history, step, targets):
        return np.ones(len(targets)), np.zeros(len(targets))


def _run(tmp_path, rule, options):
    cfg = tiny(**{"method.estimator": "v05_paper", "method.allocation": "osla", "method.rollout_rule": rule,
                  "method.rollout_rule_options": options})
    steps = train(cfg, tmp_path, prior_source=ConfidentlyWrongPrior(), tensorboard=False).records[1:]
    assert steps
    return cfg, steps


def test_osla_is_the_default_rule_and_its_plan_is_the_osla_section():
    cfg = tiny(**{"method.allocation": "osla", "osla.k_max": 8})
    assert cfg.method.rollout_rule == "osla" and cfg.plan_rule is cfg.osla and cfg.plan_rule == OslaConfig(k_max=8)


def test_reinforce_ada_draws_rounds_of_round_size_until_the_exit_condition(tmp_path):
    cfg, steps = _run(tmp_path, "reinforce_ada", {"round_size": 4, "k_max": 12, "max_rounds": 2})
    assert cfg.group_size == 4
    for r in steps:
        assert r["budget/rollouts_step"] % 4 == 0 and 4 <= r["budget/k_mean"] <= 12 and r["budget/rounds"] <= 3
    assert any(r["budget/k_max"] == 12 for r in steps)  # a policy that solves little rarely exits early


def test_reinforce_ada_trains_on_n_rows_a_prompt_with_the_pool_baseline(tmp_path, monkeypatch):
    import v05.rl.loop as loop
    from v05.baselines import compute

    seen = []

    def recording(method, rollouts, prior):
        out = real(method, rollouts, prior)
        seen.append((rollouts, out, prior))
        return out

    real = loop.compute_baseline
    monkeypatch.setattr(loop, "compute_baseline", recording)
    _run(tmp_path, "reinforce_ada", {"round_size": 4, "k_max": 12, "n": 2, "max_rounds": 2})
    assert seen
    for rollouts, out, prior in seen:
        kept = np.bincount(rollouts.group[out.keep], minlength=len(rollouts.counts))
        assert kept.tolist() == np.minimum(2, rollouts.counts).tolist()  # n rows of every prompt's pool
        pool = compute("v05_paper", rollouts.rewards, rollouts.group, prior=prior, scale="binary")
        np.testing.assert_array_equal(out.advantage, pool.advantage)  # the baseline of the whole pool


def test_knapsack_splits_its_budget_in_one_round(tmp_path):
    cfg, steps = _run(tmp_path, "knapsack", {"k_per_prompt": 6})
    assert cfg.group_size == 2  # k_min: the least the split gives a prompt
    for r in steps:  # a prior of 1 everywhere: no prompt is worth more, the fallback spreads the budget evenly
        assert (r["budget/k_mean"], r["budget/k_max"], r["budget/rounds"], r["budget/rollouts_step"]) == (6, 6, 1, 48)


def test_cures_splits_its_budget_within_k_min_and_k_max(tmp_path):
    cfg, steps = _run(tmp_path, "cures", {"k_min": 3, "k_max": 10, "k_per_prompt": 5})
    assert cfg.group_size == 3
    for r in steps:
        assert r["budget/rounds"] == 1 and r["budget/rollouts_step"] <= 40 and 3 <= r["budget/k_max"] <= 10


def test_dynamic_draws_all_equal_groups_again(tmp_path):
    cfg, steps = _run(tmp_path, "dynamic", {"k": 2, "k_max": 8})
    assert cfg.group_size == 2
    for r in steps:
        assert r["budget/rollouts_step"] % 2 == 0 and r["budget/k_max"] <= 8
    assert any(r["budget/rounds"] > 1 for r in steps)  # the tiny policy's groups are mostly all wrong


@pytest.mark.parametrize(("settings", "text"), [
    ({"method.rollout_rule": "nope"}, "method.rollout_rule == 'nope'; known rollout rules: osla, reinforce_ada"),
    ({"method.rollout_rule": "knapsack", "method.rollout_rule_options": {"k_mx": 8}},
     "method.rollout_rule_options: rollout rule knapsack got unknown option(s) ['k_mx']; its options: ['k_min'"),
    ({"method.rollout_rule_options": {"k_max": 8}}, "method.rollout_rule 'osla' takes no rollout_rule_options"),
    ({"method.allocation": "fixed", "method.rollout_rule": "dynamic"}, "is read only with allocation='osla'"),
    ({"method.rollout_rule": "dynamic", "osla.k_max": 8}, "osla settings are read only with method.rollout_rule='osla'"),
])
def test_bad_rules_and_options_are_refused_when_the_config_is_built(settings, text):
    with pytest.raises((TypeError, ValueError)) as e:
        TrainConfig().with_settings({"method.allocation": "osla", **settings})
    assert text in str(e.value)


def test_cli_selects_a_rule_by_one_setting_and_refuses_a_bad_one_in_one_red_line(tmp_path):
    runner = CliRunner()
    shown = runner.invoke(app, ["train", "--allocation", "osla", "--set", "method.rollout_rule=knapsack",
                                "--set", "method.rollout_rule_options.k_max=16", "--show-config"])
    assert shown.exit_code == 0, shown.output
    assert 'rollout_rule = "knapsack"' in shown.stdout and "k_max = 16" in shown.stdout
    bad = runner.invoke(app, ["train", "--allocation", "osla", "--set", "method.rollout_rule=knapsak",
                              "--out", str(tmp_path / "run")])
    one_red_line(bad, "method.rollout_rule == 'knapsak'; known rollout rules")
    assert not (tmp_path / "run").exists()
