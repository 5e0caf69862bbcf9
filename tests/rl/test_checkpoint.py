"""Checkpoint pieces: optimizer state and RNG states survive the safetensors + JSON round trip exactly."""

import json

import numpy as np
import torch

from v05.rl.checkpoint import (
    load_checkpoint,
    numpy_rng_from_state,
    numpy_rng_state,
    optimizer_from_tensors,
    optimizer_to_tensors,
    save_checkpoint,
)


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
    loaded, state = load_checkpoint(tmp_path)
    json.dumps(state)  # plain JSON, no pickle anywhere
    model2 = torch.nn.Linear(3, 2)
    model2.load_state_dict(model.state_dict())
    opt2 = torch.optim.Adam(model2.parameters(), lr=1e-2)
    optimizer_from_tensors(opt2, loaded, state["optimizer"])
    x = torch.randn(4, 3)
    for m, o in ((model, opt), (model2, opt2)):
        o.zero_grad()
        m(x).pow(2).sum().backward()
        o.step()
    assert all(torch.equal(a, b) for a, b in zip(model.parameters(), model2.parameters()))
    gen2 = torch.Generator()
    gen2.set_state(loaded["rng.torch"])
    assert torch.equal(torch.rand(5, generator=gen), torch.rand(5, generator=gen2))
    assert numpy_rng_from_state(state["numpy_rng"]).random() == rng.random()


def test_latest_points_at_the_newest_complete_checkpoint_and_old_ones_are_pruned(tmp_path):
    assert load_checkpoint(tmp_path) is None
    for step in (1, 2, 3):
        save_checkpoint(tmp_path, step, {"x": torch.tensor([float(step)])}, {})
    tensors, state = load_checkpoint(tmp_path)
    assert state["step"] == 3 and tensors["x"].item() == 3.0
    assert sorted(p.name for p in (tmp_path / "checkpoints").glob("step_*")) == ["step_000002", "step_000003"]
