"""Checkpoints without pickle: tensors in safetensors, everything else in JSON, written atomically.

Layout under a run folder::

    checkpoints/step_000040/weights.safetensors   policy weights, optimizer tensors, torch RNG state
    checkpoints/step_000040/state.json            config, step, counters, numpy RNG state, optimizer scalars,
                                                  prompt stream, outcome history, package versions
    checkpoints/latest                            name of the newest complete checkpoint

A checkpoint folder is written under a temporary name and renamed when complete, and ``latest`` is
replaced atomically, so a run killed at any moment (even SIGKILL) leaves a loadable checkpoint.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file

import v05

FORMAT = "v05.rl.checkpoint/1"
KEEP = 2
"""Complete checkpoints kept; older ones are deleted after a new one is written."""


def optimizer_to_tensors(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict]:
    """Split an optimizer's ``state_dict`` into named tensors and a JSON-able remainder."""
    sd = optimizer.state_dict()
    tensors, scalars = {}, {}
    for pid, state in sd["state"].items():
        for key, value in state.items():
            if torch.is_tensor(value):
                tensors[f"optim.{pid}.{key}"] = value.detach().clone().contiguous()
            else:
                scalars[f"{pid}.{key}"] = value
    return tensors, {"param_groups": sd["param_groups"], "scalars": scalars}


def optimizer_from_tensors(optimizer: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], meta: dict) -> None:
    """Inverse of :func:`optimizer_to_tensors`: load the state into ``optimizer``."""
    state: dict[int, dict] = {}
    for name, value in tensors.items():
        if name.startswith("optim."):
            _, pid, key = name.split(".", 2)
            state.setdefault(int(pid), {})[key] = value
    for name, value in meta["scalars"].items():
        pid, key = name.split(".", 1)
        state.setdefault(int(pid), {})[key] = value
    groups = [{**g, "betas": tuple(g["betas"])} if "betas" in g else g for g in meta["param_groups"]]
    optimizer.load_state_dict({"state": state, "param_groups": groups})


def numpy_rng_state(rng: np.random.Generator) -> dict:
    """The generator's bit-generator state (plain ints and strings; JSON keeps big ints exact)."""
    return rng.bit_generator.state


def numpy_rng_from_state(state: dict) -> np.random.Generator:
    """A generator continuing exactly from :func:`numpy_rng_state`'s output."""
    bit_generator = getattr(np.random, state["bit_generator"])()
    bit_generator.state = state
    return np.random.Generator(bit_generator)


def save_checkpoint(run_dir, step: int, tensors: dict[str, torch.Tensor], state: dict) -> Path:
    """Write ``checkpoints/step_<step>`` atomically, point ``latest`` at it, prune old ones; return its path."""
    root = Path(run_dir) / "checkpoints"
    root.mkdir(parents=True, exist_ok=True)
    name = f"step_{step:06d}"
    final, tmp = root / name, root / f".{name}.tmp"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(tmp / "weights.safetensors"))
    meta = {"format": FORMAT, "v05_version": v05.__version__, "torch_version": torch.__version__,
            "numpy_version": np.__version__, "step": step, **state}
    _write_atomic(tmp / "state.json", json.dumps(meta))
    for f in tmp.iterdir():
        _fsync(f)
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)
    _write_atomic(root / "latest", name)
    for old in sorted(p for p in root.glob("step_*") if p.is_dir())[:-KEEP]:
        shutil.rmtree(old)
    return final


def load_checkpoint(run_dir) -> tuple[dict[str, torch.Tensor], dict] | None:
    """The newest complete checkpoint of ``run_dir`` as (tensors, state), or None if there is none."""
    root = Path(run_dir) / "checkpoints"
    latest = root / "latest"
    if not latest.is_file():
        return None
    folder = root / latest.read_text().strip()
    state = json.loads((folder / "state.json").read_text())
    if state.get("format") != FORMAT:
        raise ValueError(f"{folder}: checkpoint format {state.get('format')!r}, expected {FORMAT!r}")
    return load_file(str(folder / "weights.safetensors")), state


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _fsync(path: Path) -> None:
    with open(path, "rb") as f:
        os.fsync(f.fileno())
