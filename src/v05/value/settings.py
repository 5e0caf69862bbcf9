"""The value-model prior settings every trainer composes (the engine's ``prior`` section, TRL's
``V05Config``): which frozen value model, and how the policy's outcome history is fed to it
(:class:`v05.value.ValueModelPrior`). verl reads its prior from a dataset column instead."""

from __future__ import annotations

from dataclasses import dataclass

from v05._validation import check_bool, check_positive_int


@dataclass(frozen=True)
class ValuePriorSettings:
    """The frozen value model that predicts each prompt's pass rate from the run's own outcome history."""

    value_model: str = "default"
    """Name (shipped weights) or directory for ``v05.value.ValueModel.load``; read only when the run needs a
    prior."""
    context_size: int = 128
    """The value model's context: this many most recent (prompt, observed pass rate) rows of the policy."""
    history_steps: int = 64
    """Older rows from at most this many training steps back (TRL: generation batches) are the value model's
    history (earlier checkpoints of the policy)."""
    history_block: int = 8
    """Steps sharing one checkpoint label in that history."""
    osla_var_floor: bool = False
    """Pass the prior's variance to OSLA as a floor on the prior's squared error (False: the paper's plug-in
    estimate only; True draws more rollouts wherever the value model is unsure). Read under OSLA top-ups."""

    def __post_init__(self):
        if not isinstance(self.value_model, str) or not self.value_model:
            raise TypeError(f"value_model must be a model name or a directory; got {self.value_model!r}")
        for name in ("context_size", "history_steps", "history_block"):
            check_positive_int(getattr(self, name), name)
        check_bool(self.osla_var_floor, "osla_var_floor")
