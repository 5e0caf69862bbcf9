"""verl V1 trajectory keys, ``{uid}_{session_id}_{index}`` (``v1/agent_loop_tq.py``): one session is one rollout
of a prompt; a multi-turn agent loop may store several outputs (``index``) per session, all with the final
output's reward (verl's ``compute_advantage_for_multi_trajectories`` scores the final one, as we do)."""

from __future__ import annotations

import numpy as np


def split_key(key: str) -> tuple[str, str, int]:
    """``(uid, session_id, index)`` of a trajectory key; ValueError for anything else."""
    parts = key.rsplit("_", 2)
    if len(parts) != 3 or not parts[2].isdigit():
        raise ValueError(f"trajectory key {key!r} is not of the form {{uid}}_{{session_id}}_{{index}}")
    return parts[0], parts[1], int(parts[2])


def final_outputs(keys) -> tuple[np.ndarray, np.ndarray]:
    """Rows of the final output of each session, and for every row the position of its session in that list.

    Returns
    -------
    final : ndarray of shape (n_sessions,)
        Row of each session's last output, in order of first appearance.
    session : ndarray of shape (len(keys),)
        ``final[session[i]]`` is the final row of row i's session.

    Examples
    --------
    >>> final_outputs(["a_0_0", "a_0_1", "a_1_0"])
    (array([1, 2]), array([0, 0, 1]))
    """
    best: dict[tuple[str, str], tuple[int, int]] = {}
    order: dict[tuple[str, str], int] = {}
    session = np.empty(len(keys), dtype=np.int64)
    for row, key in enumerate(keys):
        uid, sid, index = split_key(key)
        slot = order.setdefault((uid, sid), len(order))
        session[row] = slot
        if (uid, sid) not in best or best[(uid, sid)][0] < index:
            best[(uid, sid)] = (index, row)
    final = np.empty(len(order), dtype=np.int64)
    for pair, slot in order.items():
        final[slot] = best[pair][1]
    return final, session
