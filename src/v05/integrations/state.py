"""A trainer's own V0.5 state beside a framework's checkpoint (``v05_state.json``: the prior source's outcome
history and counters), written atomically with a checksum and verified when read back; no framework import,
so TRL's and verl's plug-ins share it.

A missing, unreadable or corrupt file is named in a warning and the newest intact one of an *older* checkpoint
of the same run (a sibling folder with the same name and a smaller trailing number: ``checkpoint-<n>`` in TRL,
``global_step_<n>`` in verl) is used instead; with none, the run resumes with an empty history (the prior
source's cold start).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import warnings
from pathlib import Path

FILE = "v05_state.json"


def write_state(folder, state: dict, fmt: str) -> Path:
    """Write ``state`` (JSON-able) into ``folder/v05_state.json`` through a temporary file and a rename."""
    body = json.dumps(state, sort_keys=True)
    payload = {"format": fmt, "sha256": hashlib.sha256(body.encode()).hexdigest(), "state": json.loads(body)}
    path = Path(folder) / FILE
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(payload, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return path


def read_state(folder, fmt: str) -> dict:
    """The state in ``folder/v05_state.json``.

    Raises
    ------
    ValueError
        If the file is missing, not JSON, of another format or fails its checksum (the message says which).
    """
    path = Path(folder) / FILE
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ValueError(f"{path} is missing") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"{path} is unreadable ({e})") from None
    if not isinstance(payload, dict) or payload.get("format") != fmt or not isinstance(payload.get("state"), dict):
        raise ValueError(f"{path} is not a {fmt} state file")
    body = json.dumps(payload["state"], sort_keys=True)
    if hashlib.sha256(body.encode()).hexdigest() != payload.get("sha256"):
        raise ValueError(f"{path} does not match its checksum")
    return payload["state"]


def read_state_or_older(checkpoint, fmt: str) -> dict | None:
    """:func:`read_state` of ``checkpoint``, else of the newest older intact sibling checkpoint (each failure
    named in a warning); None if there is none."""
    checkpoint = Path(checkpoint)
    for folder in [checkpoint] + _older_checkpoints(checkpoint):
        try:
            state = read_state(folder, fmt)
        except ValueError as e:
            warnings.warn(f"v05 state: {e}", RuntimeWarning, stacklevel=2)
            continue
        if folder != checkpoint:
            warnings.warn(f"v05 state: resuming the outcome history from the older {folder}", RuntimeWarning,
                          stacklevel=2)
        return state
    warnings.warn("v05 state: no intact state file; the outcome history restarts empty (cold start)",
                  RuntimeWarning, stacklevel=2)
    return None


def _older_checkpoints(checkpoint: Path) -> list[Path]:
    """Sibling folders named like this one with a smaller trailing number, newest first."""
    match = re.fullmatch(r"(.*\D)(\d+)", checkpoint.name)
    if match is None or not checkpoint.parent.is_dir():
        return []
    prefix, step = match.group(1), int(match.group(2))
    older = []
    for p in checkpoint.parent.iterdir():
        m = re.fullmatch(re.escape(prefix) + r"(\d+)", p.name)
        if m and int(m.group(1)) < step and p.is_dir():
            older.append((int(m.group(1)), p))
    return [p for _, p in sorted(older, reverse=True)]
