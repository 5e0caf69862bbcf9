"""The estimator settings every trainer composes and the one dry run that checks them (``v05.baselines.settings``),
the other layers' shared settings, and the field documentation read from them."""

from __future__ import annotations

import dataclasses

import pytest

from v05._fields import field_docs, hf_field
from v05.baselines import EstimatorSettings, check_estimator, dry_run, list_estimators
from v05.budget import DEFAULT_MAX_ROUNDS, OslaConfig, TopUpSettings
from v05.value import ValuePriorSettings


@pytest.mark.parametrize("name", list_estimators(aliases=True))
def test_every_estimator_passes_its_dry_run_on_groups_of_four(name):
    dry_run(name, group_size=4, n_prompts=3, scale="pm1")


@pytest.mark.parametrize("call, exc, match", [
    (lambda: dry_run("grpoo", group_size=4), ValueError, r"estimator = 'grpoo' is unknown; known: dapo, dr_grpo"),
    (lambda: dry_run("rloo", group_size=1), ValueError,
     r"^estimator 'rloo' is not defined on groups of 1 rollout\(s\): group 0 has 1 rollout\(s\); rloo needs >= 2"),
    (lambda: dry_run("v05", group_size=1), ValueError, r"estimator 'v05' is not defined on groups of 1 .*pass tau2="),
    (lambda: dry_run("grpo", {"eps": 0}, group_size=4, options_key="v05.options"), ValueError,
     r"^v05.options = \{'eps': 0\}: grpo: eps == 0"),
    (lambda: dry_run("grpo", {"std": 1}, group_size=4), TypeError,
     r"^estimator_options = \{'std': 1\}: grpo got unknown option\(s\) \['std'\]"),
    (lambda: EstimatorSettings("grpo", "none"), TypeError, "estimator_options must be a table of options"),
    (lambda: EstimatorSettings("v05", {"tau2": -1.0}), ValueError, r"tau2 == -1.0"),
])
def test_bad_estimator_settings_name_the_setting(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


def test_the_dry_run_passes_where_a_single_rollout_is_defined():
    dry_run("v05", {"tau2": 0.01}, group_size=1)  # a fixed tau2 needs no group of two
    assert check_estimator("v05_eb_beta", {"rho": 0.5}) == {"rho": 0.5}
    assert EstimatorSettings().uses_prior and not EstimatorSettings("grpo").uses_prior
    assert EstimatorSettings("v05_prior_var").needs_prior_var


def test_one_default_each():
    assert OslaConfig().max_rounds == DEFAULT_MAX_ROUNDS == 2
    assert TopUpSettings().osla == OslaConfig() and TopUpSettings().budget_per_prompt is None
    assert ValuePriorSettings() == ValuePriorSettings("default", 128, 64, 8)
    assert EstimatorSettings() == EstimatorSettings("v05", {})


def test_the_step_cap_is_a_mean_per_prompt():
    top_ups = TopUpSettings(OslaConfig(k_init=4, k_max=16), budget_per_prompt=6)
    assert top_ups.step_budget(32) == 192 and TopUpSettings().step_budget(32) is None
    assert TopUpSettings(budget_per_prompt=100 / 3).step_budget(3) == 100  # a ratio that is an int times n
    with pytest.raises(ValueError, match=r"budget_per_prompt == 3, must be a finite number >= 4"):
        TopUpSettings(budget_per_prompt=3)
    with pytest.raises(TypeError, match="osla must be an OslaConfig"):
        TopUpSettings(osla={"k_max": 8})
    with pytest.raises(TypeError, match="value_model must be a model name"):
        ValuePriorSettings(value_model="")


def test_field_docs_are_inherited_and_hf_fields_mirror_them():
    @dataclasses.dataclass(frozen=True)
    class Child(ValuePriorSettings):
        extra: int = 1
        """Own field."""

    docs = field_docs(Child)
    assert docs["extra"] == "Own field." and docs["context_size"].startswith("The value model's context")
    f = hf_field(OslaConfig, "max_rounds", prefix="OSLA: ")
    assert f.default == DEFAULT_MAX_ROUNDS and f.metadata["help"].startswith("OSLA: Most top-up rounds after the first")
    assert hf_field(EstimatorSettings, "estimator_options", default=None).default is None
