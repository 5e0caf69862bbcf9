"""The trainer's own state in TRL checkpoints: ``v05_state.json`` beside the model (the generation counter and
the prior source's outcome history), written atomically with a checksum and verified when read back.

A missing, unreadable or corrupt file is named in a warning and the newest intact one of an *older*
checkpoint of the same run is used instead; with none, the run resumes with an empty history (the value
model's cold start).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import warnings
from pathlib import Path

FILE = "v05_state.json"
FORMAT = "v05.trl/1"


def write_state(folder, state: dict) -> Path:
    """Write ``state`` (JSON-able) into ``folder/v05_state.json`` through a temporary file and a rename."""
    body = json.dumps(state, sort_keys=True)
    payload = {"format": FORMAT, "sha256": hashlib.sha256(body.encode()).hexdigest(), "state": json.loads(body)}
    path = Path(folder) / FILE
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(payload, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return path


def read_state(folder) -> dict:
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
    if not isinstance(payload, dict) or payload.get("format") != FORMAT or not isinstance(payload.get("state"), dict):
        raise ValueError(f"{path} is not a {FORMAT} state file")
    body = json.dumps(payload["state"], sort_keys=True)
    if hashlib.sha256(body.encode()).hexdigest() != payload.get("sha256"):
        raise ValueError(f"{path} does not match its checksum")
    return payload["state"]


def read_state_or_older(checkpoint) -> dict | None:
    """:func:`read_state` of ``checkpoint``, else of the newest older intact ``checkpoint-<step>`` beside it
    (each failure named in a warning); None if there is none."""
    checkpoint = Path(checkpoint)
    candidates = [checkpoint] + _older_checkpoints(checkpoint)
    for folder in candidates:
        try:
            state = read_state(folder)
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
    """Sibling ``checkpoint-<n>`` folders with n below this one's, newest first."""
    match = re.fullmatch(r"(.*)-(\d+)", checkpoint.name)
    if match is None or not checkpoint.parent.is_dir():
        return []
    prefix, step = match.group(1), int(match.group(2))
    older = []
    for p in checkpoint.parent.iterdir():
        m = re.fullmatch(re.escape(prefix) + r"-(\d+)", p.name)
        if m and int(m.group(1)) < step and p.is_dir():
            older.append((int(m.group(1)), p))
    return [p for _, p in sorted(older, reverse=True)]
