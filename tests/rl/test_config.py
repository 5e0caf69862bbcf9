"""TrainConfig: sections composed from the lower layers' configs, one door for files and --set, every bad
value rejected at construction with the setting's dotted name and the value in the message."""

import dataclasses
import json
import re
import tomllib

import pytest

from v05.budget import OslaConfig
from v05.rl.config import MOVED, SECTIONS, MethodConfig, TrainConfig
from v05.rl.policy import PolicyConfig
from v05.rl.settings import field_docs, nest, parse_assignments


@pytest.mark.parametrize(("settings", "error", "message"), [
    ({"method.estimator": "grpoo"}, ValueError, r"method.estimator = 'grpoo' is unknown; known: dapo, dr_grpo, eb_batch, grpo"),
    ({"method.estimator": "grpo", "method.estimator_options": {"std_scal": "none"}}, TypeError,
     r"method.estimator_options = \{'std_scal': 'none'\}: grpo got unknown option\(s\) \['std_scal'\]; its options"),
    ({"method.allocation": "greedy"}, ValueError, "method.allocation='greedy'; expected one of"),
    ({"optim.loss_agg": "sum"}, ValueError, "optim.loss_agg='sum'"),
    ({"method.group_size": 0}, ValueError, "method.group_size == 0, must be >= 1"),
    ({"method.group_size": 2.5}, TypeError, "method.group_size must be an int; got float 2.5"),
    ({"optim.lr": 0.0}, ValueError, r"optim.lr == 0.0, must be a finite number > 0"),
    ({"optim.lr": "abc"}, TypeError, "optim.lr must be a number; got str 'abc'"),
    ({"optim.clip_low": 1.5}, ValueError, "optim.clip_low == 1.5, must be < 1"),
    ({"optim.kl_coef": -0.1}, ValueError, "optim.kl_coef == -0.1, must be a finite number >= 0"),
    ({"seed": 1.5}, TypeError, "seed must be an int"),
    ({"prior.osla_var_floor": 1}, TypeError, "prior.osla_var_floor must be True or False"),
    ({"method.allocation": "osla", "osla.k_init": 8, "osla.k_max": 4}, ValueError, r"osla.k_max \(4\) must be >= k_init \(8\)"),
    ({"method.allocation": "osla", "osla.k_max": 10**6}, ValueError, "osla.k_max == 1000000, must be <= 4096"),
    ({"method.allocation": "osla", "osla.max_rounds": -1}, ValueError, "osla.max_rounds == -1, must be >= 0"),
    ({"method.allocation": "osla", "osla.cost": "0.01"}, TypeError, "osla.cost must be a number"),
    ({"method.allocation": "osla", "method.group_size": 8}, ValueError,
     "method.group_size == 8 is not used with allocation='osla'"),
    ({"osla.k_max": 8}, ValueError, r"osla settings are read only with method.allocation='osla' \(allocation is 'fixed'\)"),
    ({"prior.osla_var_floor": True}, ValueError, "prior.osla_var_floor = true needs method.allocation='osla'"),
    ({"method.allocation": "dynamic", "method.estimator": "v05"}, ValueError, "supports only estimators without a prior"),
    ({"method.allocation": "dynamic", "method.estimator": "dapo", "method.group_size": 1}, ValueError,
     "method.group_size == 1 with allocation='dynamic'"),
    ({"method.estimator": "rloo", "method.group_size": 1}, ValueError,
     r"estimator 'rloo' is not defined on groups of 1 rollout\(s\): group 0 has 1 rollout\(s\); rloo needs >= 2"),
    ({"method.estimator": "v05", "method.group_size": 1}, ValueError, "estimator 'v05' is not defined .*pass tau2="),
    ({"method.estimator": "grpo", "method.estimator_options": {"eps": -1.0}}, ValueError,
     r"method.estimator_options = \{'eps': -1.0\}: grpo: eps == -1.0"),
    ({"method.prompts_per_step": 64, "task.n_train": 32}, ValueError,
     r"method.prompts_per_step \(64\) must be <= task.n_train \(32\)"),
    ({"total_rollouts": 10}, ValueError, r"total_rollouts \(10\) is below one step's rollouts"),
    ({"osla": 3}, TypeError, "osla must be a table of settings"),
    ({"osla.k_mx": 3}, ValueError, r"unknown setting\(s\) \['osla.k_mx'\]; osla settings: \['k_init', 'k_max'"),
    ({"methods.estimator": "grpo"}, ValueError, r"unknown setting 'methods'; top-level settings: .*sections: \['method'"),
])
def test_bad_settings_name_the_setting_and_the_value(settings, error, message):
    with pytest.raises(error, match=message):
        TrainConfig().with_settings(settings)


@pytest.mark.parametrize(("old", "new"), [("k_max", "osla.k_max"), ("lr", "optim.lr"), ("task_seed", "task.seed"),
                                          ("dynamic_sampling", "method.allocation='dynamic'"),
                                          ("osla_prior_var", "prior.osla_var_floor")])
def test_old_flat_keys_are_refused_naming_the_new_one(old, new):
    with pytest.raises(ValueError, match=f"setting '{old}' is now {re.escape(new)} \\("):
        TrainConfig.from_dict({old: 1})


def test_every_old_key_has_a_new_home():
    keys = {f"{s}.{f.name}" for s, cls in SECTIONS.items() for f in dataclasses.fields(cls)}
    for old, new in MOVED.items():
        assert new.split(" ")[0].split("=")[0] in keys, (old, new)


def test_sections_are_the_lower_layers_configs():
    cfg = TrainConfig().with_settings({"method.allocation": "osla", "osla.k_max": 12, "osla.max_rounds": 2, "policy.n_layers": 2})
    assert isinstance(cfg.osla, OslaConfig) and cfg.osla == OslaConfig(k_max=12, max_rounds=2)
    assert isinstance(cfg.policy, PolicyConfig) and cfg.policy.n_layers == 2
    assert TrainConfig().policy == PolicyConfig()  # one set of defaults
    assert cfg.group_size == 4 and cfg.needs_prior and cfg.rollouts_per_step_min == 128
    with pytest.raises(TypeError, match="osla must be a OslaConfig; got dict"):
        TrainConfig(osla={"k_max": 8})


def test_group_size_per_allocation():
    assert TrainConfig().group_size == 4
    assert TrainConfig(method=MethodConfig(estimator="grpo", group_size=16)).group_size == 16
    assert TrainConfig().with_settings({"method.allocation": "osla", "osla.k_init": 8}).group_size == 8


def test_needs_prior():
    assert TrainConfig().needs_prior  # the default estimator, v05, fuses a prior
    assert TrainConfig().with_settings({"method.estimator": "grpo", "method.allocation": "osla"}).needs_prior
    assert not TrainConfig().with_settings({"method.estimator": "grpo"}).needs_prior


def test_files_round_trip_and_name_the_file(tmp_path):
    cfg = TrainConfig().with_settings({"method.estimator": "grpo", "method.estimator_options": {"std_scale": "none"},
                                       "seed": 3})
    (tmp_path / "c.json").write_text(json.dumps(cfg.to_dict()))
    assert TrainConfig.from_file(tmp_path / "c.json") == cfg
    (tmp_path / "c.toml").write_text('seed = 2\n[method]\nestimator = "rloo"\ngroup_size = 8\n[optim]\nlr = 1e-4\n')
    assert TrainConfig.from_file(tmp_path / "c.toml") == TrainConfig().with_settings(
        {"seed": 2, "method.estimator": "rloo", "method.group_size": 8, "optim.lr": 1e-4})
    (tmp_path / "bad.json").write_text('{"method": {"estimater": "grpo"}}')
    with pytest.raises(ValueError, match=r"bad.json: unknown setting\(s\) \['method.estimater'\]"):
        TrainConfig.from_file(tmp_path / "bad.json")
    (tmp_path / "cut.toml").write_text('[method]\nestimator = "gr')
    with pytest.raises(ValueError, match="cut.toml: not valid TOML"):
        TrainConfig.from_file(tmp_path / "cut.toml")
    (tmp_path / "c.yaml").write_text("a: 1")
    with pytest.raises(ValueError, match="expected a .json or .toml file"):
        TrainConfig.from_file(tmp_path / "c.yaml")
    with pytest.raises(FileNotFoundError, match="missing.toml not found"):
        TrainConfig.from_file(tmp_path / "missing.toml")


def test_show_config_toml_documents_every_setting_and_round_trips():
    cfg = TrainConfig().with_settings({"method.allocation": "osla", "osla.max_rounds": 2, "optim.lr": 1e-4})
    text = cfg.to_toml()
    assert TrainConfig.from_dict(tomllib.loads(text)) == cfg
    assert TrainConfig.from_dict(tomllib.loads(TrainConfig().to_toml())) == TrainConfig()  # unset values as comments
    uncapped = TrainConfig().with_settings({"method.allocation": "osla", "osla.max_rounds": None})
    assert 'max_rounds = "none"' in uncapped.to_toml()  # None is not its default (2): written, not a comment
    assert TrainConfig.from_dict(tomllib.loads(uncapped.to_toml())) == uncapped
    assert "max_rounds = 2" in text and "# group_size = (unset)" in text and "[osla]" in text
    for cls in (TrainConfig, *SECTIONS.values()):
        docs = field_docs(cls)
        assert set(docs) == {f.name for f in dataclasses.fields(cls)}, cls  # every field documented once
        assert all(doc and doc.split()[0].lower() not in ("todo", "tbd") for doc in docs.values())
    assert "Rollouts every prompt gets in the first round." in text  # OslaConfig's own docstring


def test_settings_parsing():
    assert parse_assignments(["osla.k_max=16", "method.estimator=grpo", "method.estimator_options={\"rho\": 4}",
                              "osla.max_rounds=null"]) == {
        "osla.k_max": 16, "method.estimator": "grpo", "method.estimator_options": {"rho": 4}, "osla.max_rounds": None}
    with pytest.raises(ValueError, match="--set 'k_max': expected section.key=value"):
        parse_assignments(["k_max"])
    assert nest({"a.b": 1, "a.c": 2, "d": 3}) == {"a": {"b": 1, "c": 2}, "d": 3}
    with pytest.raises(ValueError, match="'osla' is set to a value and used as a section"):
        nest({"osla": 1, "osla.k_max": 2})
    cfg = TrainConfig().with_settings({"method.estimator": "v05_eb_beta", "method.estimator_options": {"rho": 0.5}})
    assert cfg.with_settings({"method.estimator_options.rho": 0.25}).method.estimator_options == {"rho": 0.25}


def test_a_fixed_run_saved_before_the_round_cap_default_resumes_as_the_same_config():
    """``osla.max_rounds`` now defaults to 2; a fixed-k checkpoint written with the old default (None) is the
    same run (the osla section is unread outside allocation='osla'), an OSLA one keeps its explicit None."""
    from v05.rl.setup import saved_config

    old = TrainConfig().to_dict()
    old["osla"]["max_rounds"] = None
    assert saved_config({"config": old}) == TrainConfig().to_dict()
    osla = TrainConfig().with_settings({"method.allocation": "osla", "osla.max_rounds": None})
    assert saved_config({"config": osla.to_dict()})["osla"]["max_rounds"] is None
    assert TrainConfig().osla.max_rounds == 2
