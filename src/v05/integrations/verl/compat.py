"""The verl members the plug-in relies on beyond verl's documented extension points, checked against the
installed verl before anything runs (plug-in load, ``V05SyncTrainer``, the launcher).

The plug-in is written against verl 0.9.1. It overrides and calls private methods of verl's V1 trainer and
replay buffer and relies on a few data fields verl's code reads; a verl release that renames or reshapes one
of them would otherwise fail deep inside a GPU run, or not fail at all. :data:`VERL_MEMBERS` lists each
member with what breaks if it changes; ``docs/verl.md`` ("verl members the plug-in relies on") is the same
list for readers.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import logging
import re
from dataclasses import dataclass

SUPPORTED_VERL = "0.9.1"


@dataclass(frozen=True)
class Member:
    """One thing of verl's the plug-in relies on.

    ``kind``: 'method' (a class's method, with exactly ``params``), 'function' (a module-level function,
    exactly ``params``), 'attribute' (an instance attribute some class of the owner's MRO assigns as
    ``self.<name> =``), 'object' (a module-level name) or 'field' (a data field name the owner module's code
    reads, as a string literal).
    """

    owner: str
    name: str
    kind: str
    params: tuple[str, ...] = ()
    breaks: str = ""
    """What goes wrong in the plug-in if this member changes."""

    @property
    def label(self) -> str:
        return f"{self.owner}.{self.name}"


_V1 = "verl.trainer.ppo.v1"
_TRAINER = f"{_V1}.trainer_sync.PPOTrainerSync"
_BUFFER = f"{_V1}.replay_buffer.ReplayBuffer"
_TU = "verl.utils.tensordict_utils"

VERL_MEMBERS: tuple[Member, ...] = (
    # the v05_sync trainer (trainer.py) subclasses PPOTrainerSync
    Member(_TRAINER, "__init__", "method", ("self", "config"),
           "V05SyncTrainer cannot be built (it checks +v05, then hands the config on)"),
    Member(_TRAINER, "_build_replay_buffer", "method", ("self",), "the V05ReplayBuffer is never bound: osla runs fail"),
    Member(_TRAINER, "_init_dataloader", "method", ("self",),
           "the +v05 dataset columns are not checked before the models load"),
    Member(_TRAINER, "_submit_batch_to_rollout", "method", ("self", "batch"),
           "no parent tags or per-prompt rollout counts; top-ups cannot be submitted"),
    Member(_TRAINER, "_compute_advantage", "method", ("self", "batch", "metrics"),
           "V0.5's estimators get no prior and no parent grouping"),
    Member(_TRAINER, "on_step_end", "method", ("self",), "kept prompt rows of a step are not released"),
    Member(_TRAINER, "_save_checkpoint", "method", ("self",), "the history prior's outcome history is not saved"),
    Member(_TRAINER, "_load_checkpoint", "method", ("self",), "the history prior's outcome history is not restored"),
    Member(_TRAINER, "trainer_mode", "attribute", (),
           "V05SyncTrainer's property no longer stands in for it: verl keys sync behaviour on the literal 'sync'"),
    Member(_TRAINER, "config", "attribute", (), "the trainer reads its algorithm and +v05 settings from it"),
    Member(_TRAINER, "replay_buffer", "attribute", (), "the osla first round cannot be planned"),
    Member(_TRAINER, "global_steps", "attribute", (), "top-up requests carry no step"),
    Member(_TRAINER, "train_dataset", "attribute", (), "the +v05 columns of the training data cannot be checked"),
    Member(f"{_V1}.trainer_base", "register_trainer", "function", ("name",),
           "trainer.v1.trainer_mode=v05_sync is unknown"),
    Member(f"{_V1}.trainer_base", "TRAINER_REGISTRY", "object", (), "trainer.v1.trainer_mode=v05_sync is unknown"),
    Member(f"{_V1}.agent_loop_tq", "__rollout_n__", "field", (),
           "per-prompt rollout counts (static, osla) are ignored: every prompt gets rollout.n"),
    Member(f"{_V1}.trainer_base", "is_padding", "field", (), "verl's padding rows would be scored as rollouts"),
    Member(f"{_V1}.trainer_base", "raw_prompt", "field", (), "the history prior cannot key prompts by their text"),
    # the top-up sampler (sampler.py) subclasses ReplayBuffer
    Member(_BUFFER, "__init__", "method", ("self", "trainer_mode", "trainer_config", "max_off_policy_threshold",
                                           "max_off_policy_strategy", "sampler_kwargs", "poll_interval", "refill_fn",
                                           "filter_groups_metric", "train_batch_size", "gen_batch_size",
                                           "max_inflight_gen_batches", "sync_refill_failed_groups"),
           "verl cannot build the V05ReplayBuffer (it passes these keywords)"),
    Member(_BUFFER, "sample", "method", ("self", "global_steps", "partition_id", "batch_size"),
           "verl's trainer no longer reaches the top-up loop"),
    Member(_BUFFER, "_sync_metadata_from_transfer_queue", "method", ("self",), "finished requests are never seen"),
    Member(_BUFFER, "_wait_for_next_poll", "method", ("self", "partition_id", "last_debug_time"),
           "the poll loop breaks"),
    Member(_BUFFER, "_materialize_batch", "method",
           ("self", "partition_id", "selected_prompt_uids", "partition_snapshot"),
           "complete groups cannot be handed to training"),
    Member(_BUFFER, "partitions", "attribute", (), "trajectory keys of finished requests are not found"),
    Member(_BUFFER, "finished_keys", "attribute", (), "finished requests are never seen"),
    Member(_BUFFER, "failure_keys", "attribute", (), "failed requests are never forfeited: the step waits forever"),
    Member(_BUFFER, "poll_interval", "attribute", (), "the poll loop's pause"),
    # estimators (estimator.py) and the advantage step (trainer.py)
    Member("verl.trainer.ppo.core_algos", "register_adv_est", "function", ("name_or_enum",),
           "V0.5's estimators are not registered"),
    Member("verl.trainer.ppo.core_algos", "get_adv_estimator_fn", "function", ("name_or_enum",),
           "the trainer cannot call the registered estimator"),
    Member("verl.trainer.ppo.core_algos", "ADV_ESTIMATOR_REGISTRY", "object", (),
           "V0.5's estimators are not registered"),
    Member("verl.trainer.ppo.rollout_corr_helper", "compute_rollout_correction_and_add_to_batch", "function",
           ("batch", "rollout_corr_config"), "rollout correction is not applied with V0.5's estimators"),
    Member("verl.workers.utils.padding", "response_to_nested", "function", ("tensor", "response_mask"),
           "advantages cannot be written back to TransferQueue"),
    Member(_TU, "assign_non_tensor_stack", "function", ("tensor_dict", "key", "val"), "prompts cannot be tagged"),
    Member(_TU, "assign_non_tensor_data", "function", ("tensor_dict", "key", "val"), "top-up batches carry no step"),
    Member(_TU, "index_select_tensor_dict", "function", ("batch", "indices"), "top-up rows cannot be built"),
    Member(_TU, "concat_tensordict", "function", ("data",), "top-up rows cannot be batched"),
)
"""What the plug-in itself relies on (checked when it loads and when the trainer is built)."""

LAUNCHER_MEMBERS: tuple[Member, ...] = (
    Member("verl.trainer.main_ppo", "main.__wrapped__", "function", ("config",),
           "python -m v05.integrations.verl.main cannot hand the checked config to verl"),
)
"""What ``python -m v05.integrations.verl.main`` relies on in addition."""


def _resolve(path: str):
    """The object at a dotted path: the longest importable module prefix, then attributes."""
    parts = path.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        for part in parts[i:]:
            obj = getattr(obj, part)
        return obj
    raise ImportError(f"no module in {path!r}")


@functools.cache
def _module_source(module: str) -> str:
    try:
        return inspect.getsource(importlib.import_module(module))
    except (OSError, TypeError):
        return ""


def _assigns(cls, name: str) -> bool:
    """True if the module of ``cls`` or of one of its bases assigns ``self.<name> = ...``."""
    pattern = re.compile(rf"\bself\.{re.escape(name)}\s*(:[^=\n]+)?=(?!=)")
    return any(pattern.search(_module_source(klass.__module__)) for klass in inspect.getmro(cls))


def _problem(member: Member) -> str | None:
    """What is wrong with ``member`` in the installed verl, or None."""
    try:
        owner = _resolve(member.owner)
    except (ImportError, AttributeError) as e:
        return f"{member.owner} is missing ({e})"
    if member.kind == "field":
        source = _module_source(owner.__name__)
        found = f'"{member.name}"' in source or f"'{member.name}'" in source
        return None if found else f"{member.owner} no longer reads the field {member.name!r}"
    if member.kind == "attribute":
        if _assigns(owner, member.name):
            return None
        return f"{member.label} is no longer assigned (self.{member.name} = ...)"
    try:
        obj = _resolve(f"{member.owner}.{member.name}") if "." in member.name else getattr(owner, member.name)
    except AttributeError:
        return f"{member.label} is missing"
    if member.kind == "object":
        return None
    if not callable(obj):
        return f"{member.label} is not callable"
    params = tuple(inspect.signature(obj).parameters)
    if params != member.params:
        return f"{member.label}{params} should take {member.params}"
    return None


def verl_mismatches(members=VERL_MEMBERS) -> list[str]:
    """What differs between the installed verl and what the plug-in relies on (empty when compatible)."""
    return [p for p in map(_problem, members) if p is not None]


def incompatibility(members=VERL_MEMBERS) -> str | None:
    """The error message for the installed verl (naming its version, the supported one and every changed
    member), or None when it has everything in ``members``. Logs a warning, once, for another verl version
    that has every member."""
    import verl

    installed = getattr(verl, "__version__", "unknown")
    problems = verl_mismatches(members)
    if problems:
        return (f"the v05 verl plug-in supports verl=={SUPPORTED_VERL}; verl {installed} is installed and differs "
                f"where the plug-in relies on it: {'; '.join(problems)}. Install verl[verl-core]=={SUPPORTED_VERL} "
                "(docs/verl.md lists what the plug-in relies on)")
    if installed != SUPPORTED_VERL:
        _warn_version(installed)
    return None


@functools.cache
def _warn_version(installed: str) -> None:
    logging.getLogger("v05").warning("the v05 verl plug-in is tested with verl==%s; verl %s is installed (every "
                                     "member it relies on is present)", SUPPORTED_VERL, installed)


@functools.cache
def check_verl(members=VERL_MEMBERS) -> None:
    """Raise ImportError with :func:`incompatibility`'s message when the installed verl lacks or changed a
    member the plug-in relies on. A passing check is remembered for the process."""
    message = incompatibility(members)
    if message is not None:
        raise ImportError(message)
