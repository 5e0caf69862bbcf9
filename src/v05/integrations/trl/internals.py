"""Every private member of TRL's ``GRPOTrainer`` (and of transformers' ``Trainer``) that ``V05GRPOTrainer``
touches, in one place: the lists :func:`trl_mismatches` checks against the installed TRL, and the one writer
into TRL's logs (:func:`log_metrics`, :func:`show_advantages`).

``docs/trl.md`` ("TRL internals it touches") says what each member is used for and what breaks if it changes.
The lists are written for TRL 1.16 (``v05[trl]`` pins ``trl>=1.16,<1.17``).
"""

from __future__ import annotations

import inspect
from collections import defaultdict, deque

import torch
from trl import GRPOTrainer

TRL_HOOKS = {
    "_generate_and_score_completions": ("self", "inputs"),
    "_calculate_rewards": ("self", "inputs", "prompts", "completions", "completion_ids_list"),
    "_save_checkpoint": ("self", "model", "trial"),
    "_load_optimizer_and_scheduler": ("self", "checkpoint"),
    "_get_output_dir": ("self", "trial"),
    "compute_loss": ("self", "model", "inputs", "return_outputs", "num_items_in_batch"),
}
"""Methods the subclass overrides or calls, with their parameters in TRL 1.16."""

TRL_SOURCE = {
    ("_generate_and_score_completions", "self._calculate_rewards("): "it scores through _calculate_rewards",
    ("_generate_and_score_completions", '"advantages": advantages'): "its output carries the advantages",
    ("_generate_and_score_completions", '"completion_ids": completion_ids'): "its output carries the completions",
    ("_generate_and_score_completions", '"num_items_in_batch": num_items_in_batch'):
        "its output carries the global token count",
    ("_generate_and_score_completions", 'self._logs["advantages"].extend('):
        "it logs every process's advantages for the completions table",
    ("_prepare_inputs", "split_tensor_dict("): "it splits every tensor of the generation batch into micro-batches",
    ("_compute_loss", "current_gradient_accumulation_steps"): "it scales its loss by the accumulation steps",
}
"""What the subclass relies on inside TRL's own methods: (method, text its source holds) -> the behaviour."""


def _is_metrics(value) -> bool:
    return (isinstance(value, dict) and {"train", "eval"} <= value.keys()
            and all(isinstance(value[m], defaultdict) and value[m].default_factory is list for m in ("train", "eval")))


TRL_ATTRIBUTES = {
    "_metrics": (_is_metrics, "a dict {'train', 'eval'} of defaultdict(list)"),
    "_logs": (lambda v: isinstance(v, dict) and isinstance(v.get("advantages"), deque),
              "a dict whose 'advantages' is a deque"),
    "reward_weights": (lambda v: torch.is_tensor(v) and v.ndim == 1, "a 1-D tensor (one weight per reward function)"),
    "num_generations": (lambda v: isinstance(v, int), "an int"),
    "num_generations_eval": (lambda v: isinstance(v, int), "an int"),
}
"""Attributes a built trainer must have: name -> (check, what it should be)."""


def trl_mismatches(cls=GRPOTrainer, trainer=None) -> list[str]:
    """What differs between the installed TRL and what this adapter touches (empty when compatible).

    Checks ``cls``'s methods (:data:`TRL_HOOKS`: present, same parameters) and their source
    (:data:`TRL_SOURCE`); with ``trainer`` (a built ``GRPOTrainer``), also its attributes (:data:`TRL_ATTRIBUTES`).
    """
    problems = []
    for name, params in TRL_HOOKS.items():
        fn = getattr(cls, name, None)
        if fn is None:
            problems.append(f"{cls.__name__}.{name} is missing")
        elif tuple(inspect.signature(fn).parameters) != params:
            problems.append(f"{cls.__name__}.{name}{tuple(inspect.signature(fn).parameters)} should take {params}")
    for (name, text), behaviour in TRL_SOURCE.items():
        fn = getattr(cls, name, None)
        if fn is None:
            if name not in TRL_HOOKS:
                problems.append(f"{cls.__name__}.{name} is missing")
            continue
        try:
            source = inspect.getsource(fn)
        except (OSError, TypeError):
            source = ""
        if text not in source:
            problems.append(f"{cls.__name__}.{name} no longer holds {text!r} ({behaviour})")
    if trainer is not None:
        for name, (check, expected) in TRL_ATTRIBUTES.items():
            if not hasattr(trainer, name):
                problems.append(f"{type(trainer).__name__}.{name} is missing")
            elif not check(getattr(trainer, name)):
                problems.append(f"{type(trainer).__name__}.{name} should be {expected}; got "
                                f"{type(getattr(trainer, name)).__name__}")
    return problems


def check_trl(cls=GRPOTrainer, trainer=None) -> None:
    """Raise ``ImportError`` naming every :func:`trl_mismatches` problem (the trainer refuses such a TRL)."""
    problems = trl_mismatches(cls, trainer)
    if problems:
        import trl

        raise ImportError(f"V05GRPOTrainer needs trl>=1.16,<1.17 (found {trl.__version__}): " + "; ".join(problems))


def log_metrics(trainer, mode: str, values: dict[str, float]) -> None:
    """Append ``values`` to TRL's own ``trainer._metrics[mode]`` (averaged over the logging window by TRL's
    ``log``, next to its metrics). The only place the adapter writes TRL's metrics."""
    for key, value in values.items():
        trainer._metrics[mode][key].append(float(value))


def show_advantages(trainer, advantages) -> None:
    """Make TRL's completions table show ``advantages`` (all processes' rows of the batch, in order) instead of
    the GRPO advantages TRL logged for the last rows (``trainer._logs['advantages']``, a bounded deque)."""
    logged = trainer._logs["advantages"]
    k = min(len(logged), len(advantages))
    for _ in range(k):
        logged.pop()
    logged.extend(float(a) for a in advantages[len(advantages) - k:])
