"""The generalist value model (V0 idea, offline on CPU): pass-rate prediction with a calibrated variance."""

from v05.value.embed import Encoder, HashingEncoder, MiniLMEncoder, get_encoder
from v05.value.evaluate import bench_priors, evaluate, leave_policies_out
from v05.value.model import NotFittedError, ValueModel, shipped_models

__all__ = [
    "Encoder", "HashingEncoder", "MiniLMEncoder", "NotFittedError", "ValueModel", "bench_priors", "evaluate",
    "get_encoder", "leave_policies_out", "shipped_models",
]
