"""The verl guard against the real installed verl (passes) and against a verl missing or changing a member
(fails naming the installed and supported versions and the member); the one metrics writer."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

pytest.importorskip("verl", reason="needs the v05[verl] extra (verl[verl-core]==0.9.1)")
import verl
from verl.trainer.ppo.v1 import replay_buffer, trainer_base

from v05.integrations.verl import compat
from v05.integrations.verl.compat import LAUNCHER_MEMBERS, SUPPORTED_VERL, VERL_MEMBERS, check_verl, verl_mismatches
from v05.integrations.verl.metrics import METRICS, record

DOCS = Path(__file__).resolve().parents[2] / "docs" / "verl.md"


def test_the_installed_verl_has_every_member():
    assert verl.__version__ == SUPPORTED_VERL
    assert verl_mismatches(VERL_MEMBERS + LAUNCHER_MEMBERS) == []
    check_verl()


def _fresh_check(members=VERL_MEMBERS):
    check_verl.cache_clear()
    try:
        check_verl(members)
    finally:
        check_verl.cache_clear()


def test_a_missing_private_method_fails_naming_versions_and_member(monkeypatch):
    monkeypatch.delattr(replay_buffer.ReplayBuffer, "_materialize_batch")
    with pytest.raises(ImportError) as info:
        _fresh_check()
    message = str(info.value)
    assert f"supports verl=={SUPPORTED_VERL}" in message and f"verl {verl.__version__} is installed" in message
    assert "verl.trainer.ppo.v1.replay_buffer.ReplayBuffer._materialize_batch is missing" in message


def test_a_changed_signature_fails_naming_the_expected_parameters(monkeypatch):
    monkeypatch.setattr(trainer_base.PPOTrainer, "_compute_advantage", lambda self, batch: batch)
    problems = verl_mismatches()
    assert len(problems) == 1
    assert "_compute_advantage('self', 'batch') should take ('self', 'batch', 'metrics')" in problems[0]


def test_a_field_verl_stops_reading_and_an_attribute_it_stops_setting_are_caught(monkeypatch):
    real = compat._module_source

    def edited(module: str) -> str:  # verl's sources as a release that renamed both would read
        return real(module).replace("__rollout_n__", "__n__").replace("self.poll_interval", "self.interval")

    monkeypatch.setattr(compat, "_module_source", edited)
    problems = verl_mismatches()
    assert any("no longer reads the field '__rollout_n__'" in p for p in problems)
    assert any("ReplayBuffer.poll_interval is no longer assigned" in p for p in problems)


def test_another_version_with_every_member_only_warns(monkeypatch, caplog):
    monkeypatch.setattr(verl, "__version__", "0.9.2")
    compat._warn_version.cache_clear()
    _fresh_check()
    assert "tested with verl==0.9.1; verl 0.9.2 is installed" in caplog.text


def test_the_plug_in_logs_a_changed_verl_as_an_error_when_it_loads(monkeypatch, caplog):
    import importlib

    from v05.integrations.verl import plugin

    monkeypatch.delattr(replay_buffer.ReplayBuffer, "_sync_metadata_from_transfer_queue")
    importlib.reload(plugin)  # as `import verl` loads it in every process
    errors = [r for r in caplog.records if r.name == "v05" and r.levelname == "ERROR"]
    assert len(errors) == 1 and "_sync_metadata_from_transfer_queue is missing" in errors[0].getMessage()
    assert "v05" in plugin.ESTIMATORS  # registration itself went through: the trainer then refuses to start


def test_the_trainer_refuses_to_start_on_a_changed_verl(monkeypatch):
    from omegaconf import OmegaConf

    from v05.integrations.verl.trainer import V05SyncTrainer

    monkeypatch.delattr(replay_buffer.ReplayBuffer, "_wait_for_next_poll")
    check_verl.cache_clear()
    try:
        with pytest.raises(ImportError, match="_wait_for_next_poll is missing"):
            V05SyncTrainer(OmegaConf.create({}))
    finally:
        check_verl.cache_clear()


def test_docs_list_every_member_the_plug_in_relies_on():
    text = DOCS.read_text()
    section = text[text.index("## verl members the plug-in relies on"):]
    missing = [m.label for m in VERL_MEMBERS + LAUNCHER_MEMBERS
               if not re.search(rf"`{re.escape(m.owner.rsplit('.', 1)[-1])}\.{re.escape(m.name)}[`(]", section)]
    assert not missing


def test_metrics_go_through_one_checked_writer():
    metrics = {"actor/entropy": 1.0}
    assert record(metrics, {"v05/prior/mean": 0.25}) is metrics
    assert metrics == {"actor/entropy": 1.0, "v05/prior/mean": 0.25}
    with pytest.raises(KeyError, match="not a V0.5 verl metric"):
        record(metrics, {"v05/prior/mena": 0.2})
    with pytest.raises(ValueError, match="v05/rollouts/per_prompt = nan: must be a finite number"):
        record(metrics, {"v05/rollouts/per_prompt": float("nan")})
    text = DOCS.read_text()
    assert all(f"`{name}`" in text for name in METRICS)


def test_the_v05_group_table_names_every_key():
    """docs/verl.md's `+v05` table has a row for every setting of the group (a nested one as `key` or `key.*`)."""
    import dataclasses

    from v05.integrations.verl.config import V05VerlConfig

    def keys(obj, prefix):
        for f in dataclasses.fields(obj):
            if f.name == "rollouts":
                yield from keys(getattr(obj, f.name), f"{prefix}.rollouts")
            else:
                yield f"{prefix}.{f.name}"

    text = DOCS.read_text()
    table = text[text.index("## The `+v05` group"):text.index("## The `v05_sync` trainer")]
    rows = {key.removesuffix(".*") for key in re.findall(r"^\| `([^`]+)` \|", table, flags=re.M)}
    assert set(keys(V05VerlConfig(), "v05")) == rows
