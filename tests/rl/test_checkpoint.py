"""Checkpoints: exact round trips, and every way a checkpoint folder can be damaged, tried as a user would
meet it: each is named ("checkpoint N is corrupt: <file> ...") and the newest intact older one is used."""

import json
import logging

import numpy as np
import pytest
import torch

from v05_testing.engine import tiny
from v05.rl.checkpoint import (
    FORMAT,
    CheckpointError,
    load_checkpoint,
    numpy_rng_from_state,
    numpy_rng_state,
    optimizer_from_tensors,
    optimizer_to_tensors,
    save_checkpoint,
)
from v05.rl.loop import train


def _trained_adam():
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 2)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(3):
        opt.zero_grad()
        model(torch.randn(4, 3)).pow(2).sum().backward()
        opt.step()
    return model, opt


def test_optimizer_and_rngs_round_trip(tmp_path):
    model, opt = _trained_adam()
    tensors, meta = optimizer_to_tensors(opt)
    gen = torch.Generator().manual_seed(7)
    torch.rand(3, generator=gen)
    rng = np.random.default_rng(5)
    rng.random(4)
    save_checkpoint(tmp_path, 3, {**tensors, "rng.torch": gen.get_state()},
                    {"optimizer": meta, "numpy_rng": numpy_rng_state(rng)})
    loaded = load_checkpoint(tmp_path)
    json.dumps(loaded.state)  # plain JSON, no pickle anywhere
    assert loaded.step == 3 and loaded.skipped == () and loaded.state["format"] == FORMAT
    model2 = torch.nn.Linear(3, 2)
    model2.load_state_dict(model.state_dict())
    opt2 = torch.optim.Adam(model2.parameters(), lr=1e-2)
    optimizer_from_tensors(opt2, loaded.tensors, loaded.state["optimizer"])
    x = torch.randn(4, 3)
    for m, o in ((model, opt), (model2, opt2)):
        o.zero_grad()
        m(x).pow(2).sum().backward()
        o.step()
    assert all(torch.equal(a, b) for a, b in zip(model.parameters(), model2.parameters()))
    gen2 = torch.Generator()
    gen2.set_state(loaded.tensors["rng.torch"])
    assert torch.equal(torch.rand(5, generator=gen), torch.rand(5, generator=gen2))
    assert numpy_rng_from_state(loaded.state["numpy_rng"]).random() == rng.random()


def _three_checkpoints(run_dir):
    for step in (1, 2, 3):
        save_checkpoint(run_dir, step, {"x": torch.arange(1000, dtype=torch.float32) * step}, {})
    return run_dir / "checkpoints"


def test_latest_points_at_the_newest_complete_checkpoint_and_old_ones_are_pruned(tmp_path):
    assert load_checkpoint(tmp_path) is None
    root = _three_checkpoints(tmp_path)
    loaded = load_checkpoint(tmp_path)
    assert loaded.step == 3 and loaded.tensors["x"][1].item() == 3.0
    assert sorted(p.name for p in root.glob("step_*")) == ["step_000002", "step_000003"]
    assert len(json.loads((root / "step_000003" / "state.json").read_text())["weights_sha256"]) == 64


def _cut(path):
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _flip(path):
    data = bytearray(path.read_bytes())
    data[len(data) - 100] ^= 0x01  # one bit of a weight: still valid safetensors, a different number
    path.write_bytes(bytes(data))


DAMAGE = {
    "truncated state.json": ("state.json", _cut, "is not valid JSON"),
    "binary state.json": ("state.json", lambda p: p.write_bytes(b"\x00\xff\xfe garbage"), "is not valid JSON"),
    "missing state.json": ("state.json", lambda p: p.unlink(), "is missing"),
    "state.json of another step": ("state.json", lambda p: p.write_text(json.dumps(
        {**json.loads(p.read_text()), "step": 7})), "says step 7, not 3"),
    "truncated weights": ("weights.safetensors", _cut, "does not match the checksum"),
    "empty weights": ("weights.safetensors", lambda p: p.write_bytes(b""), "does not match the checksum"),
    "flipped byte in weights": ("weights.safetensors", _flip, "does not match the checksum"),
    "missing weights": ("weights.safetensors", lambda p: p.unlink(), "is missing"),
}


@pytest.mark.parametrize("case", list(DAMAGE))
def test_a_corrupt_newest_checkpoint_is_named_and_the_older_one_used(tmp_path, case):
    file, damage, fault = DAMAGE[case]
    root = _three_checkpoints(tmp_path)
    damage(root / "step_000003" / file)
    loaded = load_checkpoint(tmp_path)
    assert loaded.step == 2 and loaded.tensors["x"][1].item() == 2.0
    assert len(loaded.skipped) == 1
    assert loaded.skipped[0].startswith(f"checkpoint 3 is corrupt: {root / 'step_000003' / file} {fault}")


@pytest.mark.parametrize(("latest", "message"), [
    ("step_000009", "checkpoint 9 is corrupt: {root}/latest names step_000009, which does not exist"),
    ("garbage", "{root}/latest is corrupt: it names 'garbage', not a checkpoint folder"),
    ("", "{root}/latest is corrupt: it names ''"),
    ("../../elsewhere/step_000001", "{root}/latest points outside the run folder ('../../elsewhere/step_000001'); refused"),
    ("/tmp/step_000001", "{root}/latest points outside the run folder"),
])
def test_a_bad_latest_is_named_and_the_newest_intact_folder_used(tmp_path, latest, message):
    root = _three_checkpoints(tmp_path)
    (root / "latest").write_text(latest)
    loaded = load_checkpoint(tmp_path)
    assert loaded.step == 3 and len(loaded.skipped) == 1 and loaded.skipped[0].startswith(message.format(root=root))


def test_binary_latest_and_a_missing_latest(tmp_path):
    root = _three_checkpoints(tmp_path)
    (root / "latest").write_bytes(b"\xff\xfe\x00")
    assert load_checkpoint(tmp_path).step == 3
    (root / "latest").unlink()  # killed between renaming the folder and writing latest
    assert load_checkpoint(tmp_path).step == 3


def test_a_checkpoint_linked_from_outside_the_run_is_refused(tmp_path):
    outside = _three_checkpoints(tmp_path / "other") / "step_000003"
    root = _three_checkpoints(tmp_path / "run")
    (root / "step_000009").symlink_to(outside, target_is_directory=True)
    (root / "latest").write_text("step_000009")
    loaded = load_checkpoint(tmp_path / "run")
    assert loaded.step == 3 and loaded.path == root / "step_000003"
    assert "a link out of the run folder; refused" in loaded.skipped[0]


def test_no_intact_checkpoint_is_an_error_naming_each(tmp_path):
    root = _three_checkpoints(tmp_path)
    _flip(root / "step_000003" / "weights.safetensors")
    _cut(root / "step_000002" / "state.json")
    with pytest.raises(CheckpointError, match=r"no intact checkpoint in .*checkpoint 3 is corrupt: .*weights.safetensors "
                                              r"does not match .*; checkpoint 2 is corrupt: .*state.json is not valid"):
        load_checkpoint(tmp_path)


def test_another_format_is_named(tmp_path):
    root = _three_checkpoints(tmp_path)
    for folder in root.glob("step_*"):
        state = json.loads((folder / "state.json").read_text())
        (folder / "state.json").write_text(json.dumps({**state, "format": "v05.rl.checkpoint/1"}))
    with pytest.raises(CheckpointError, match="has format 'v05.rl.checkpoint/1'; this version reads"):
        load_checkpoint(tmp_path)


def _comparable(records):
    return [{k: v for k, v in r.items() if not k.startswith("time/")} for r in records]


def test_training_resumes_exactly_from_the_intact_older_checkpoint(tmp_path, caplog):
    cfg = tiny(**{"total_rollouts": 480, "method.estimator": "grpo", "checkpoint_every": 2})
    reference = train(cfg, tmp_path / "reference", tensorboard=False)

    def crash(record):
        if record["step"] == 5:
            raise RuntimeError("simulated crash")

    with pytest.raises(RuntimeError, match="simulated crash"):
        train(cfg, tmp_path / "run", on_record=crash, tensorboard=False)
    root = tmp_path / "run" / "checkpoints"
    assert (root / "latest").read_text() == "step_000004"
    _flip(root / "step_000004" / "weights.safetensors")
    with caplog.at_level(logging.INFO, logger="v05.rl"):
        resumed = train(cfg, tmp_path / "run", tensorboard=False)
    warning, info = (r.getMessage() for r in caplog.records)
    assert warning.startswith(f"checkpoint 4 is corrupt: {root / 'step_000004' / 'weights.safetensors'} does not "
                              "match the checksum in state.json")
    assert warning.endswith("; using the older checkpoint 2") and info == "resuming from step 2"
    assert _comparable(resumed.records) == _comparable(reference.records)
