"""The plug-in loads through verl's own mechanisms, in a fresh process as every Ray worker would."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

pytest.importorskip("verl", reason="needs the v05[verl] extra (verl[verl-core]==0.9.1)")

PROBE = (
    "import verl\n"
    "from verl.trainer.ppo.core_algos import ADV_ESTIMATOR_REGISTRY\n"
    "from verl.trainer.ppo.v1.trainer_base import TRAINER_REGISTRY\n"
    "print('v05' in ADV_ESTIMATOR_REGISTRY, 'v05_grpo' in ADV_ESTIMATOR_REGISTRY, 'v05_sync' in TRAINER_REGISTRY)\n"
)


def _run(env: dict) -> str:
    out = subprocess.run([sys.executable, "-c", PROBE], env={**os.environ, **env}, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout.strip().splitlines()[-1]


@pytest.mark.slow
def test_import_verl_loads_the_entry_point():
    assert _run({"VERL_USE_EXTERNAL_PLUGINS": "auto", "VERL_USE_EXTERNAL_MODULES": ""}) == "True True True"


@pytest.mark.slow
def test_the_env_var_path_loads_it_with_entry_points_off():
    assert _run({"VERL_USE_EXTERNAL_PLUGINS": "none"}) == "False False False"
    env = {"VERL_USE_EXTERNAL_PLUGINS": "none", "VERL_USE_EXTERNAL_MODULES": "v05.integrations.verl.plugin"}
    assert _run(env) == "True True True"


def test_registration_is_idempotent_and_covers_the_registry():
    import importlib

    from verl.trainer.ppo.core_algos import ADV_ESTIMATOR_REGISTRY, get_adv_estimator_fn

    from v05.baselines import list_estimators
    from v05.integrations.verl import plugin
    from v05.integrations.verl.estimator import register_estimators, verl_name

    before = get_adv_estimator_fn("v05")
    importlib.reload(plugin)
    assert register_estimators() and get_adv_estimator_fn("v05") is before
    names = {verl_name(n) for n in list_estimators(aliases=True)}
    assert names <= set(ADV_ESTIMATOR_REGISTRY)
    assert {"grpo", "rloo", "gae"} <= set(ADV_ESTIMATOR_REGISTRY) and not names & {"grpo", "rloo", "gae", "mean"}


def test_naming_rule():
    from v05.integrations.verl.estimator import our_name, verl_name

    assert [verl_name(n) for n in ("v05", "v05_eb", "grpo", "rloo")] == ["v05", "v05_eb", "v05_grpo", "v05_rloo"]
    assert our_name("v05_grpo") == "grpo" and our_name("v05_eb_loo") == "v05_eb_loo" and our_name("grpo") is None
