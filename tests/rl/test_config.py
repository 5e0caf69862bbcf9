"""TrainConfig: every bad value is rejected at construction with the field and the value in the message."""

import json

import pytest

from v05.rl.config import TrainConfig


@pytest.mark.parametrize(("changes", "message"), [
    ({"estimator": "grpoo"}, "estimator = 'grpoo' is unknown; known: "),
    ({"estimator_options": {"std_scal": "none"}, "estimator": "grpo"}, r"\['std_scal'\] are not options of 'grpo'"),
    ({"allocation": "greedy"}, "allocation = 'greedy': expected one of"),
    ({"loss_agg": "sum"}, "loss_agg = 'sum'"),
    ({"group_size": 0}, "group_size = 0: must be >= 1"),
    ({"lr": 0.0}, "lr = 0.0: must be a finite number > 0"),
    ({"clip_low": 1.5}, "clip_low = 1.5: must be < 1"),
    ({"kl_coef": -0.1}, "kl_coef = -0.1: must be a finite number >= 0"),
    ({"allocation": "osla", "group_size": 8, "k_max": 4}, r"k_max \(4\) must be >= group_size \(8\)"),
    ({"allocation": "osla", "dynamic_sampling": True}, "cannot be combined"),
    ({"dynamic_sampling": True, "estimator": "v05"}, "supports only estimators without a prior"),
    ({"estimator": "rloo", "group_size": 1}, "group_size = 1: estimator 'rloo' is not defined on groups of this size"),
    ({"estimator": "v05", "group_size": 1}, "group_size = 1: estimator 'v05' is not defined .*pass tau2="),
    ({"estimator": "grpo", "group_size": 1}, "group_size = 1: estimator 'grpo' is not defined .*std_scale='batch'"),
    ({"estimator": "grpo", "estimator_options": {"eps": -1.0}}, r"estimator_options = \{'eps': -1.0\}: grpo: eps == -1.0"),
    ({"prompts_per_step": 64, "n_train_prompts": 32}, r"prompts_per_step \(64\) must be <= n_train_prompts \(32\)"),
    ({"total_rollouts": 10}, r"total_rollouts \(10\) is below one step's rollouts"),
])
def test_bad_values_name_field_and_value(changes, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig(**changes)


def test_wrong_type_is_a_type_error():
    with pytest.raises(TypeError, match="seed = 1.5: must be an int"):
        TrainConfig(seed=1.5)


def test_files_round_trip_and_unknown_keys(tmp_path):
    cfg = TrainConfig(estimator="grpo", estimator_options={"std_scale": "none"}, seed=3)
    (tmp_path / "c.json").write_text(json.dumps(cfg.to_dict()))
    assert TrainConfig.from_file(tmp_path / "c.json") == cfg
    (tmp_path / "c.toml").write_text('estimator = "rloo"\ngroup_size = 8\n[estimator_options]\n')
    assert TrainConfig.from_file(tmp_path / "c.toml") == TrainConfig(estimator="rloo", group_size=8)
    (tmp_path / "bad.json").write_text('{"estimater": "grpo"}')
    with pytest.raises(ValueError, match=r"bad.json: unknown config key\(s\) \['estimater'\]"):
        TrainConfig.from_file(tmp_path / "bad.json")
    with pytest.raises(ValueError, match="expected a .json or .toml file"):
        (tmp_path / "c.yaml").write_text("a: 1")
        TrainConfig.from_file(tmp_path / "c.yaml")


def test_needs_prior():
    assert TrainConfig(estimator="v05").needs_prior
    assert TrainConfig(estimator="grpo", allocation="osla").needs_prior
    assert not TrainConfig(estimator="grpo").needs_prior
