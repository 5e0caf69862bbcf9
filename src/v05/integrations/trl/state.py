"""The trainer's own state in TRL checkpoints: ``checkpoint-<step>/v05_state.json`` beside the model (the
generation counter and the prior source's outcome history), through :mod:`v05.integrations.state` (atomic,
checksummed; a missing or corrupt file is named and an older checkpoint's used)."""

from __future__ import annotations

from pathlib import Path

from v05.integrations import state as _state

FILE = _state.FILE
FORMAT = "v05.trl/1"


def write_state(folder, state: dict) -> Path:
    """Write ``state`` (JSON-able) into ``folder/v05_state.json``."""
    return _state.write_state(folder, state, FORMAT)


def read_state(folder) -> dict:
    """The state in ``folder/v05_state.json`` (ValueError naming what is wrong with the file)."""
    return _state.read_state(folder, FORMAT)


def read_state_or_older(checkpoint) -> dict | None:
    """The state of ``checkpoint``, else of the newest older intact ``checkpoint-<step>`` beside it; None if none."""
    return _state.read_state_or_older(checkpoint, FORMAT)
