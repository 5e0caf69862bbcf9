"""Checkpoints without pickle: tensors in safetensors, everything else in JSON, written atomically and
verified when read back.

Layout under a run folder::

    checkpoints/step_000040/weights.safetensors   policy weights, optimizer tensors, torch RNG state
    checkpoints/step_000040/state.json            config, step, counters, numpy RNG state, optimizer scalars,
                                                  prompt stream, outcome history, package versions and the
                                                  sha256 of weights.safetensors
    checkpoints/latest                            name of the newest complete checkpoint

A checkpoint folder is written under a temporary name and renamed when complete, and ``latest`` is
replaced atomically, so a run killed at any moment (even SIGKILL) leaves a loadable checkpoint; the last
``KEEP`` are kept. Reading one checks that ``state.json`` parses and names its own step, and that the
weights match their checksum; a checkpoint that fails is reported as corrupt (naming the file) and the
newest intact older one is used instead. ``latest`` may only name a checkpoint folder of the same run.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file

import v05
from v05._validation import file_sha256

FORMAT = "v05.rl.checkpoint/2"
KEEP = 2
"""Complete checkpoints kept; older ones are deleted after a new one is written."""
WEIGHTS, STATE, LATEST = "weights.safetensors", "state.json", "latest"
_FOLDER = re.compile(r"step_(\d{6,})")


class CheckpointError(ValueError):
    """A checkpoint on disk cannot be used; the message names the checkpoint, the file and the fault."""


@dataclass(frozen=True)
class Checkpoint:
    """One intact checkpoint, read and verified."""

    step: int
    tensors: dict[str, torch.Tensor]
    state: dict
    path: Path
    skipped: tuple[str, ...] = ()
    """Why newer checkpoints of the run were not used (each names the checkpoint and the file)."""


def save_checkpoint(run_dir, step: int, tensors: dict[str, torch.Tensor], state: dict) -> Path:
    """Write ``checkpoints/step_<step>`` atomically, point ``latest`` at it, prune old ones; return its path."""
    root = Path(run_dir) / "checkpoints"
    root.mkdir(parents=True, exist_ok=True)
    name = f"step_{step:06d}"
    final, tmp = root / name, root / f".{name}.tmp"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(tmp / WEIGHTS))
    meta = {"format": FORMAT, "v05_version": v05.__version__, "torch_version": torch.__version__,
            "numpy_version": np.__version__, "step": step, "weights_sha256": file_sha256(tmp / WEIGHTS), **state}
    _write_atomic(tmp / STATE, json.dumps(meta))
    for f in tmp.iterdir():
        _fsync(f)
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)
    _write_atomic(root / LATEST, name)
    for old in _folders(root)[KEEP:]:
        shutil.rmtree(old)
    return final


def load_checkpoint(run_dir) -> Checkpoint | None:
    """The newest intact checkpoint of ``run_dir``, or None if the run has none.

    ``latest`` is tried first, then every checkpoint folder from the newest down; the ones that fail
    verification are listed in ``Checkpoint.skipped``.

    Raises
    ------
    CheckpointError
        If the run has checkpoints (or a ``latest``) but none is intact.
    """
    root = Path(run_dir) / "checkpoints"
    if not root.is_dir():
        return None
    problems: list[str] = []
    candidates = _from_latest(root, problems)
    candidates += [f for f in _folders(root) if f not in candidates]
    for folder in candidates:
        try:
            tensors, state = read_checkpoint(folder)
        except CheckpointError as e:
            problems.append(str(e))
            continue
        return Checkpoint(state["step"], tensors, state, folder, tuple(problems))
    if problems:
        raise CheckpointError(f"no intact checkpoint in {root}: " + "; ".join(problems))
    return None


def read_checkpoint(folder) -> tuple[dict[str, torch.Tensor], dict]:
    """One checkpoint folder as (tensors, state), verified; ``CheckpointError`` names what is wrong."""
    folder = Path(folder)
    match = _FOLDER.fullmatch(folder.name)
    if match is None:
        raise CheckpointError(f"{folder} is not a checkpoint folder (step_NNNNNN)")
    step = int(match.group(1))

    def corrupt(file: str, fault: str) -> CheckpointError:
        return CheckpointError(f"checkpoint {step} is corrupt: {folder / file} {fault}")

    try:
        state = json.loads((folder / STATE).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise corrupt(STATE, "is missing") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise corrupt(STATE, f"is not valid JSON, e.g. cut short ({e})") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        found = state.get("format") if isinstance(state, dict) else type(state).__name__
        raise corrupt(STATE, f"has format {found!r}; this version reads {FORMAT!r}")
    if state.get("step") != step:
        raise corrupt(STATE, f"says step {state.get('step')!r}, not {step}")
    if not (folder / WEIGHTS).is_file():
        raise corrupt(WEIGHTS, "is missing")
    digest = file_sha256(folder / WEIGHTS)
    if digest != state.get("weights_sha256"):
        raise corrupt(WEIGHTS, f"does not match the checksum in {STATE} (sha256 {digest[:12]}..., "
                               f"expected {str(state.get('weights_sha256'))[:12]}...)")
    try:
        tensors = load_file(str(folder / WEIGHTS))
    except Exception as e:  # the checksum matched, so the writer itself failed; report, never crash the resume
        raise corrupt(WEIGHTS, f"cannot be read ({type(e).__name__}: {e})") from None
    return tensors, state


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


def _from_latest(root: Path, problems: list[str]) -> list[Path]:
    """The folder ``latest`` names, if it is a checkpoint folder of this run (else a problem is noted)."""
    latest = root / LATEST
    if not latest.exists():
        return []
    try:
        name = latest.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as e:
        problems.append(f"{latest} is corrupt ({type(e).__name__})")
        return []
    folder = root / name
    if "/" in name or "\\" in name or name.startswith(".."):
        problems.append(f"{latest} points outside the run folder ({name[:80]!r}); refused")
    elif not _FOLDER.fullmatch(name):
        problems.append(f"{latest} is corrupt: it names {name[:80]!r}, not a checkpoint folder step_NNNNNN")
    elif folder.is_symlink():
        problems.append(f"{latest} names {name}, a link out of the run folder; refused")
    elif not folder.is_dir():
        problems.append(f"checkpoint {int(name[5:])} is corrupt: {latest} names {name}, which does not exist")
    else:
        return [folder]
    return []


def _folders(root: Path) -> list[Path]:
    """Checkpoint folders directly inside ``root`` (not links out of it), newest first."""
    inside = [p for p in root.iterdir() if _FOLDER.fullmatch(p.name) and p.is_dir() and not p.is_symlink()]
    return sorted(inside, key=lambda p: int(p.name[5:]), reverse=True)


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
