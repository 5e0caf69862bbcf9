"""The engine, TRL and verl check the estimator with the one dry run (``v05.baselines.dry_run``) and share the
layers' defaults: the same bad setting gives the same message in all three."""

from __future__ import annotations

import pytest

pytest.importorskip("trl")
pytest.importorskip("verl", reason="needs the v05[verl] extra (verl[verl-core]==0.9.1)")
from hydra import compose, initialize_config_dir

from v05.budget import OslaConfig
from v05.integrations.trl import V05Config
from v05.integrations.verl.config import SAMPLER_NAME, SAMPLER_PATH, check_run
from v05.integrations.verl.main import CONFIG_DIR
from v05.rl import TrainConfig


def engine(estimator, options, k):
    return TrainConfig().with_settings({"method.estimator": estimator, "method.estimator_options": options,
                                        "method.group_size": k})


def trl(estimator, options, k, tmp_path):
    return V05Config(output_dir=str(tmp_path), use_cpu=True, bf16=False, estimator=estimator,
                     estimator_options=options, num_generations=k, per_device_train_batch_size=2 * k)


def verl(estimator, options, k):
    overrides = [f"algorithm.adv_estimator=v05_{estimator}" if not estimator.startswith("v05") else
                 f"algorithm.adv_estimator={estimator}", f"actor_rollout_ref.rollout.n={k}",
                 "trainer.v1.trainer_mode=v05_sync", *(f"+v05.options.{o}={v}" for o, v in options.items())]
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base=None):
        return check_run(compose(config_name="ppo_trainer", overrides=overrides))


@pytest.mark.parametrize("estimator, options, k, exc, message", [
    ("rloo", {}, 1, ValueError, r"estimator 'rloo' is not defined on groups of 1 rollout\(s\): .*rloo needs >= 2"),
    ("v05", {}, 1, ValueError, r"estimator 'v05' is not defined on groups of 1 rollout\(s\): .*pass tau2="),
    ("grpo", {"eps": 0}, 4, ValueError, r"grpo: eps == 0, must be"),
    ("grpo", {"std": 1}, 4, TypeError, r"grpo got unknown option\(s\) \['std'\]"),
])
def test_the_same_bad_estimator_setting_fails_the_same_way_in_every_trainer(tmp_path, estimator, options, k, exc,
                                                                             message):
    builds = [lambda: engine(estimator, options, k), lambda: verl(estimator, options, k)]
    if k >= 2:  # TRL's GRPOConfig itself refuses num_generations=1
        builds.append(lambda: trl(estimator, options, k, tmp_path))
    for build in builds:
        with pytest.raises(exc, match=message):
            build()


def test_the_three_trainers_share_the_round_cap_and_value_prior_defaults(tmp_path):
    assert TrainConfig().osla == OslaConfig() == verl("v05", {}, 4).rollouts.osla
    assert trl("v05", {}, 4, tmp_path).max_rounds == OslaConfig().max_rounds == 2
    cfg, args = TrainConfig().prior, trl("v05", {}, 4, tmp_path)
    assert (cfg.value_model, cfg.context_size, cfg.history_steps, cfg.history_block) == (
        args.value_model, args.context_size, args.history_steps, args.history_block)


def engine_rule(rule, options):
    return TrainConfig().with_settings({"method.allocation": "osla", "method.rollout_rule": rule,
                                        "method.rollout_rule_options": options})


def trl_rule(rule, options, tmp_path):
    return V05Config(output_dir=str(tmp_path), use_cpu=True, bf16=False, num_generations=4,
                     per_device_train_batch_size=8, rollout_rule=rule, rollout_rule_options=options)


def verl_rule(rule, options):
    overrides = ["algorithm.adv_estimator=v05", "trainer.v1.trainer_mode=v05_sync", "+v05.rollouts.mode=osla",
                 f"trainer.v1.sampler.custom_sampler.path={SAMPLER_PATH}",
                 f"trainer.v1.sampler.custom_sampler.name={SAMPLER_NAME}", f"+v05.rollouts.rule={rule}",
                 *(f"+v05.rollouts.rule_options.{o}={v}" for o, v in options.items())]
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base=None):
        return check_run(compose(config_name="ppo_trainer", overrides=overrides))


def test_reinforce_ada_is_one_setting_in_every_trainer_and_a_bad_option_fails_the_same_way(tmp_path):
    options = {"n": 2, "round_size": 4}
    assert engine_rule("reinforce_ada", options).method.rollout_rule == "reinforce_ada"
    assert trl_rule("reinforce_ada", options, tmp_path).plan_rule == verl_rule("reinforce_ada", options).rollouts.plan_rule()
    for build in (lambda: engine_rule("reinforce_ada", {"exit": "positive"}),
                  lambda: trl_rule("reinforce_ada", {"exit": "positive"}, tmp_path),
                  lambda: verl_rule("reinforce_ada", {"exit": "positive"})):
        with pytest.raises(ValueError, match=r"rule_options: reinforce_ada: exit='positive'; expected one of"):
            build()

def _prior_source_builds(source, estimator, tmp_path, top_ups=False):
    """The engine, TRL and verl built with one prior source and estimator (with top-ups when asked)."""
    engine_settings = {"prior.source": source, "method.estimator": estimator}
    engine_settings.update({"method.allocation": "osla"} if top_ups else {})
    trl_top_ups = {"k_max": 8} if top_ups else {}
    verl_overrides = [f"+v05.prior_source={source}", f"algorithm.adv_estimator=v05_{estimator}"
                      if not estimator.startswith("v05") else f"algorithm.adv_estimator={estimator}",
                      "trainer.v1.trainer_mode=v05_sync"]
    if top_ups:
        verl_overrides += ["+v05.rollouts.mode=osla", f"trainer.v1.sampler.custom_sampler.path={SAMPLER_PATH}",
                           f"trainer.v1.sampler.custom_sampler.name={SAMPLER_NAME}"]

    def build_verl():
        with initialize_config_dir(config_dir=CONFIG_DIR, version_base=None):
            return check_run(compose(config_name="ppo_trainer", overrides=verl_overrides))

    return [lambda: TrainConfig().with_settings(engine_settings),
            lambda: V05Config(output_dir=str(tmp_path), use_cpu=True, bf16=False, estimator=estimator,
                              num_generations=4, per_device_train_batch_size=8, prior_source=source, **trl_top_ups),
            build_verl]


@pytest.mark.parametrize("source, estimator, top_ups, message", [
    ("bogus", "v05", False, r"prior[._]source='bogus'; expected one of \(.*'history', 'none'\)"),
    ("none", "v05", False, r"prior[._]source='none' gives no prior, but (method\.|algorithm\.adv_)?estimator='v05' "
                           r"fuses a prior; choose another (v05\.)?prior[._]source \(e\.g\. 'history'\) or an "
                           r"estimator without a prior"),
    ("none", "grpo", True, r"prior[._]source='none' gives no prior, but .* plans top-ups from a prior; choose another "
                           r"(v05\.)?prior[._]source \(e\.g\. 'history'\)"),
])
def test_the_same_bad_prior_source_fails_the_same_way_in_every_trainer(tmp_path, source, estimator, top_ups, message):
    for build in _prior_source_builds(source, estimator, tmp_path, top_ups):
        with pytest.raises(ValueError, match=message):
            build()


def test_history_with_a_variance_weighted_estimator_runs_in_every_trainer(tmp_path):
    """The history prior carries its own variance: v05_prior_var needs no variance column or setting."""
    for build in _prior_source_builds("history", "v05_prior_var", tmp_path):
        build()
