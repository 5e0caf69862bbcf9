"""Where the prior pass rate of each prompt comes from: a dataset column, any callable, the shipped value model
reading the policy's own outcomes (the same ``OutcomeHistory``/``ValueModelPrior`` as the CPU engine), or each
prompt's own past outcomes (``HistoryPrior``, no value model).

Every source (a :class:`TrlPriorSource`) answers ``predict(table, step, pass_rate, counts) -> Prior``, row j for
prompt j of a generation batch's M prompts (variance None where the source has none); ``pass_rate``/``counts``
are the first round's outcomes, which only the cold starts (value model, history) read. Every source is asked
after the first round and before any top-up.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from v05._validation import py
from v05.baselines import Prior
from v05.integrations.trl.rows import PromptTable
from v05.value import HistoryPrior
from v05.value.history import cross_fit_splits
from v05.value.prior import OutcomeHistory, ValueModelPrior

UNINFORMED = (0.5, 1.0 / 12.0)
"""Prior (mean, variance) of a prompt nothing is known about: the uniform distribution's on [0, 1]."""


class TrlPriorSource:
    """Base of the TRL trainer's prior sources: ``predict`` (a :class:`~v05.baselines.Prior` for a generation
    batch's :class:`PromptTable`) is required; ``observe`` and the state methods are for sources
    that learn from the run (the value model's outcome history)."""

    def predict(self, table: PromptTable, step: int, pass_rate: np.ndarray, counts: np.ndarray) -> Prior:
        raise NotImplementedError

    def observe(self, step: int, texts: list[str], pass_rate: np.ndarray, counts: np.ndarray) -> None:
        """Record the step's observed pass rates (nothing to record by default)."""

    def state_dict(self) -> dict:
        """JSON-able state to checkpoint (none by default)."""
        return {}

    def load_state_dict(self, state: dict) -> None:
        """Restore :meth:`state_dict`."""


def check_prior_values(mean, var, n: int, where: str, labels=None) -> tuple[np.ndarray, np.ndarray | None]:
    """``mean`` (and ``var``) as float arrays of length ``n``, means in [0, 1] and variances finite >= 0; errors
    name ``where``, the entry and, when given, its label (a prompt)."""
    out = []
    for name, values, hi in (("prior", mean, 1.0), ("prior variance", var, np.inf)):
        if values is None:
            out.append(None)
            continue
        try:
            arr = np.asarray(values, dtype=np.float64).reshape(-1)
        except (TypeError, ValueError):
            raise TypeError(f"{where}: the {name} must be numbers; got {str(values)[:80]}") from None
        if len(arr) != n:
            raise ValueError(f"{where}: {len(arr)} {name} value(s) for {n} prompt(s)")
        bad = np.flatnonzero(~(np.isfinite(arr) & (arr >= 0.0) & (arr <= hi)))
        if len(bad):
            i = int(bad[0])
            label = f" (prompt {str(labels[i])[:60]!r})" if labels is not None else ""
            allowed = "in [0, 1]" if hi == 1.0 else "finite and >= 0"
            raise ValueError(f"{where}[{i}] = {py(arr[i])!r}{label}: the {name} must be {allowed} "
                             f"({len(bad)} bad value(s))")
        out.append(arr)
    return out[0], out[1]


def check_prior_column(dataset, column: str, var_column: str | None, name: str) -> None:
    """Fail before training if a map-style dataset lacks the prior column or holds a value outside [0, 1]
    (an ``IterableDataset`` is checked batch by batch instead)."""
    names = getattr(dataset, "column_names", None)
    if dataset is None or names is None or not hasattr(dataset, "__len__"):
        return
    for col in (column, var_column):
        if col is not None and col not in names:
            raise ValueError(f"{name} has no column {col!r} (prior_source='column'); its columns: {list(names)}")
    check_prior_values(_column(dataset, column), None if var_column is None else _column(dataset, var_column),
                       len(dataset), f"{name}[{column!r}]")


def _column(dataset, column: str) -> list:
    values = dataset[column]
    return [np.nan if v is None else v for v in values]


class ColumnPrior(TrlPriorSource):
    """The prior of each prompt from its row's ``column`` (and variance from ``var_column``)."""

    def __init__(self, column: str, var_column: str | None = None):
        self.column, self.var_column = column, var_column

    def predict(self, table, step, pass_rate, counts):
        for row in table.rows:
            if self.column not in row or (self.var_column is not None and self.var_column not in row):
                missing = self.column if self.column not in row else self.var_column
                raise ValueError(f"prompt {str(row.get('prompt'))[:60]!r} has no column {missing!r} "
                                 "(prior_source='column')")
        mean = [row[self.column] for row in table.rows]
        var = None if self.var_column is None else [row[self.var_column] for row in table.rows]
        return Prior(*check_prior_values([np.nan if v is None else v for v in mean], var, len(table),
                                         f"column {self.column!r}", labels=table.texts))


class CallablePrior(TrlPriorSource):
    """The prior from ``fn(prompts) -> mean`` or ``(mean, var)``, called with the batch's distinct prompts
    (text or chat messages, as in the dataset), once per generation batch."""

    def __init__(self, fn: Callable):
        if not callable(fn):
            raise TypeError(f"prior_fn must be callable; got {type(fn).__name__}")
        self.fn = fn

    def predict(self, table, step, pass_rate, counts):
        out = self.fn(table.prompts)
        mean, var = out if isinstance(out, tuple) else (out, None)
        return Prior(*check_prior_values(mean, var, len(table), "prior_fn output", labels=table.texts))


class OutcomeSource(TrlPriorSource):
    """Base of the sources that read the policy's outcomes of this run: each generation batch's observed
    (prompt, pass rate, completions) rows are appended to an :class:`~v05.value.prior.OutcomeHistory`, which
    is checkpointed with the trainer."""

    def __init__(self):
        self.history = OutcomeHistory()

    def observe(self, step, texts, pass_rate, counts):
        seen = np.flatnonzero(counts > 0)
        self.history.add(step, [texts[j] for j in seen], pass_rate[seen], counts[seen])

    def state_dict(self) -> dict:
        return {"history": self.history.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.history = OutcomeHistory.from_state_dict(state["history"])


class HistorySource(OutcomeSource):
    """Each prompt's Beta posterior of its own past outcomes in this run around a Beta prior fitted on all of
    them (:class:`~v05.value.HistoryPrior`); prompts never seen get the fitted prior. A batch met with an empty
    history (the first) gets the batch-level prior cross-fitted on its own first round
    (:meth:`~v05.value.HistoryPrior.cold_start`; ``docs/method.md`` 6.1)."""

    def predict(self, table, step, pass_rate, counts):
        if len(self.history):
            return HistoryPrior().predict(self.history, step, table.texts)
        return HistoryPrior().cold_start(pass_rate, counts)


class ValueModelSource(OutcomeSource):
    """The shipped value model reading the policy's outcome history of this run.

    Later batches are predicted from the run's outcome history (the most recent rows as the policy's
    context, older ones as earlier checkpoints). **Cold start** (empty history, the first batch): the
    batch's own first round is the context, cross-fitted so that no prompt sees its own outcome: the prompts
    with a scorable completion are split into two halves by position and each half is predicted from the
    other (prompts without one from all of them); with fewer than two such prompts the prior is
    :data:`UNINFORMED`.
    """

    def __init__(self, model, *, context_size: int, history_steps: int, history_block: int):
        super().__init__()
        self.reader = ValueModelPrior(model, context_size=context_size, history_steps=history_steps,
                                      history_block=history_block)

    def predict(self, table, step, pass_rate, counts):
        texts = table.texts
        if len(self.history):
            return self.reader.predict(self.history, step, texts)
        return self._cold_start(texts, step, pass_rate, counts)

    def _cold_start(self, texts, step, pass_rate, counts):
        mean, var = np.full(len(texts), UNINFORMED[0]), np.full(len(texts), UNINFORMED[1])
        for targets, context in cross_fit_splits(counts):
            ctx = OutcomeHistory()
            ctx.add(step, [texts[j] for j in context], pass_rate[context], counts[context])
            part = self.reader.predict(ctx, step, [texts[j] for j in targets])
            mean[targets], var[targets] = part.mean, part.var
        return Prior(mean, var)
