"""Translation between TRL's generation batches (row dicts, padded tensors, one slice per process) and the flat
arrays of ``v05.baselines`` / ``v05.budget`` (one reward per completion, a prompt index per completion).

Nothing here computes a baseline: these are the small, testable pieces the trainer strings together.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

LEFT_PADDED = {"prompt_ids": "pad", "prompt_mask": 0}
"""Output keys TRL left-pads, with their padding value ("pad": the tokenizer's pad token id)."""
RIGHT_PADDED = {"completion_ids": "pad", "completion_mask": 0, "tool_mask": 1, "old_per_token_logps": 0.0,
                "ref_per_token_logps": 0.0, "sampling_per_token_logps": 0.0, "importance_sampling_ratio": 0.0}
"""Output keys TRL right-pads (along the completion), with the values TRL pads them with."""
ROW_KEYS = {"advantages", "v05_rewards"}
"""Output keys with one entry per row and no padding."""


def portable_row(row: dict) -> dict:
    """The JSON-serialisable columns of a dataset row (its prompt always): what identifies a prompt and what a
    top-up needs to generate more completions of it. Images and other objects are dropped."""
    out = {}
    for key, value in row.items():
        try:
            json.dumps(value)
        except (TypeError, ValueError):
            if key == "prompt":
                raise TypeError(f"the prompt of a row is {type(value).__name__}, not text or chat messages") from None
            continue
        out[key] = value
    return out


def prompt_key(row: dict) -> str:
    """Identity of a dataset example within a generation batch: its portable columns as canonical JSON.

    TRL repeats one dataset row ``num_generations`` times, so the copies share a key; two rows with the same
    prompt and the same other columns are the same task and form one group.
    """
    return json.dumps(row, sort_keys=True, ensure_ascii=False)


def prompt_text(prompt) -> str:
    """Text the value model reads: a plain prompt as it is, a conversation's last user message (its text parts).

    Examples
    --------
    >>> prompt_text([{"role": "system", "content": "Be brief."}, {"role": "user", "content": "What is 2 + 3?"}])
    'What is 2 + 3?'
    """
    if isinstance(prompt, str):
        return prompt
    users = [m for m in prompt if isinstance(m, dict) and m.get("role") == "user"]
    if not users:
        raise ValueError(f"conversational prompt has no user message: {str(prompt)[:80]!r}")
    content = users[-1].get("content", "")
    if isinstance(content, list):  # content blocks: keep the text ones
        content = " ".join(b.get("text", "") for b in content if isinstance(b, dict) and b.get("type") == "text")
    return str(content)


@dataclass(frozen=True)
class PromptTable:
    """The prompts (groups) of a generation batch, in order of first appearance.

    Attributes
    ----------
    keys : list of (str, int), length M
        :func:`prompt_key` of each prompt and which copy of it this group is (0 unless the dataset holds the
        same row twice: then each ``group_size`` copies form one group, as in TRL).
    rows : list of dict, length M
        One portable row per prompt (what a top-up repeats).
    """

    keys: list[tuple[str, int]]
    rows: list[dict]

    def __len__(self) -> int:
        return len(self.keys)

    @classmethod
    def from_rows(cls, rows: list[dict], group_size: int) -> tuple["PromptTable", np.ndarray]:
        """The table of ``rows`` (portable rows, global order) and each row's prompt index, shape (n_rows,).

        Rows are grouped by :func:`prompt_key`, wherever they sit; the n-th row of a key joins copy
        ``n // group_size`` of it.
        """
        index: dict[tuple[str, int], int] = {}
        seen: dict[str, int] = {}
        first: list[dict] = []
        group = np.empty(len(rows), dtype=np.int64)
        for i, row in enumerate(rows):
            key = prompt_key(row)
            n = seen.get(key, 0)
            seen[key] = n + 1
            slot = (key, n // group_size)
            if slot not in index:
                index[slot] = len(first)
                first.append(row)
            group[i] = index[slot]
        return cls(list(index), first), group

    @property
    def prompts(self) -> list:
        """The prompt of each row (text or chat messages), length M."""
        return [row["prompt"] for row in self.rows]

    @property
    def texts(self) -> list[str]:
        """:func:`prompt_text` of each prompt, length M."""
        return [prompt_text(p) for p in self.prompts]


def scalar_rewards(rewards_per_func: torch.Tensor, weights: torch.Tensor) -> np.ndarray:
    """TRL's reward of each completion: the weighted sum over reward functions (in float32, as TRL sums it),
    NaN where every function returned None (unscorable).

    Parameters
    ----------
    rewards_per_func : tensor of shape (n_rows, n_funcs)
        Gathered over processes, NaN where a function returned None.
    weights : tensor of shape (n_funcs,)

    Returns
    -------
    ndarray of shape (n_rows,), float64
    """
    unscorable = torch.isnan(rewards_per_func).all(dim=1)  # (n_rows,)
    rewards = (rewards_per_func * weights.to(rewards_per_func.device).unsqueeze(0)).nansum(dim=1)  # (n_rows,)
    rewards[unscorable] = torch.nan
    return rewards.detach().cpu().double().numpy()


def process_slice(n_rows: int, process_index: int, num_processes: int) -> slice:
    """This process's rows of ``n_rows`` gathered rows (TRL lays processes out one after the other)."""
    if n_rows % num_processes:
        raise ValueError(f"{n_rows} rows do not split evenly over {num_processes} processes")
    per = n_rows // num_processes
    return slice(process_index * per, (process_index + 1) * per)


def local_rows(values, sizes: list[int], process_index: int, num_processes: int):
    """This process's entries of ``values`` (global rows laid out round after round, ``sizes[r]`` rows in round
    r, each round split over the processes), in the order this process holds its rows."""
    parts, start = [], 0
    for n in sizes:
        s = process_slice(n, process_index, num_processes)
        parts.append(values[start + s.start:start + s.stop])
        start += n
    return np.concatenate(parts)


def kept_share(keep: np.ndarray, sizes: list[int], process_index: int,
               num_processes: int) -> tuple[np.ndarray, np.ndarray]:
    """This process's share of the kept rows (``keep``, (n_rows,) bool over the global rows laid out as in
    :func:`local_rows`): the kept rows in global order, split evenly over the processes. Returns their positions
    among the rows gathered from every process (process 0's local rows, then process 1's...) and their global
    indices.

    Examples
    --------
    >>> kept_share(np.array([1, 0, 1, 1, 0, 1], dtype=bool), [4, 2], 1, 2)  # round 0: rows 0-1 on process 0
    (array([4, 5]), array([3, 5]))
    """
    n = sum(sizes)
    order = np.concatenate([local_rows(np.arange(n), sizes, p, num_processes) for p in range(num_processes)])
    position = np.empty(n, dtype=np.int64)
    position[order] = np.arange(n)  # where each global row sits once gathered
    kept = np.flatnonzero(keep)
    mine = kept[process_slice(len(kept), process_index, num_processes)]
    return position[mine], mine


def padding(key: str, pad_token_id: int) -> tuple[bool, int]:
    """How TRL pads the output ``key``: (on the left?, the fill value)."""
    left = key in LEFT_PADDED
    fill = (LEFT_PADDED if left else RIGHT_PADDED)[key]
    return left, pad_token_id if fill == "pad" else fill


def gather_output(accelerator, out: dict, pad_token_id: int) -> dict:
    """Every process's rows of a ``_generate_and_score_completions`` output, process after process (padded to
    the widest process with TRL's values); ``num_items_in_batch`` is left out (the caller recounts it)."""
    gathered = {}
    for key, value in out.items():
        if key == "num_items_in_batch":
            continue
        if value is None:
            gathered[key] = None
        elif key in ROW_KEYS:
            gathered[key] = accelerator.gather(value)
        elif key in LEFT_PADDED or key in RIGHT_PADDED:
            left, fill = padding(key, pad_token_id)
            value = accelerator.pad_across_processes(value, dim=1, pad_index=fill, pad_first=left)
            gathered[key] = accelerator.gather(value)
        else:
            raise NotImplementedError(f"cannot share the output {key!r} out over the processes (multimodal inputs)")
    return gathered


def take_rows(out: dict, rows: np.ndarray) -> dict:
    """The given rows of an output (every row-wise tensor indexed; None and scalars kept)."""
    index = torch.as_tensor(rows, dtype=torch.long)
    return {key: value[index.to(value.device)] if isinstance(value, torch.Tensor) and value.dim() else value
            for key, value in out.items()}


def top_up_rows(rows: list[dict], index: np.ndarray, n: np.ndarray) -> tuple[list[dict], np.ndarray]:
    """The rows of one top-up round in global order: ``n[j]`` copies of prompt ``index[j]``'s row, prompt by
    prompt, so every block of ``num_generations`` rows is one prompt (as TRL and vLLM's server mode expect).

    Returns the rows and each row's prompt index, shape (n.sum(),).
    """
    group = np.repeat(np.asarray(index, dtype=np.int64), n)  # (n.sum(),)
    return [dict(rows[j]) for j in group], group


def merge_outputs(parts: list[dict], pad_token_id: int) -> dict:
    """Concatenate the outputs of several ``_generate_and_score_completions`` calls row-wise (this process's rows).

    Prompt tensors are re-padded on the left and completion tensors on the right to the widest part, with the
    values TRL pads them with; ``num_items_in_batch`` (a global token count) is summed.

    Raises
    ------
    NotImplementedError
        For an output key this merge does not know (multimodal inputs), rather than dropping it.
    """
    if len(parts) == 1:
        return parts[0]
    merged = {}
    for key in parts[0]:
        values = [p[key] for p in parts]
        if key == "num_items_in_batch":
            merged[key] = torch.stack(values).sum()
        elif values[0] is None:
            merged[key] = None
        elif key in ROW_KEYS:
            merged[key] = torch.cat(values)
        elif key in LEFT_PADDED or key in RIGHT_PADDED:
            left, fill = padding(key, pad_token_id)
            merged[key] = _cat_padded(values, fill, left)
        else:
            raise NotImplementedError(f"top-ups cannot merge the output {key!r} (multimodal inputs); set k_max=None "
                                      "to train without top-ups")
    return merged


def _cat_padded(tensors: list[torch.Tensor], value, left: bool) -> torch.Tensor:
    """Concatenate (rows, width) tensors after padding each to the largest width."""
    width = max(t.size(1) for t in tensors)
    padded = [F.pad(t, (width - t.size(1), 0) if left else (0, width - t.size(1)), value=value) for t in tensors]
    return torch.cat(padded)
