"""The generalist value model (V0 idea, offline on CPU): pass-rate prediction with a calibrated variance.

Its evaluation against rivals lives in :mod:`v05.bench.value_eval`."""

from v05.value.embed import Encoder, HashingEncoder, MiniLMEncoder, get_encoder
from v05.value.history import HistoryPrior
from v05.value.model import NotFittedError, ValueModel, shipped_models
from v05.value.prior import OutcomeHistory, PriorSource, ValueModelPrior
from v05.value.settings import ValuePriorSettings

__all__ = ["Encoder", "HashingEncoder", "HistoryPrior", "MiniLMEncoder", "NotFittedError", "OutcomeHistory",
           "PriorSource", "ValueModel", "ValueModelPrior", "ValuePriorSettings", "get_encoder", "shipped_models"]
