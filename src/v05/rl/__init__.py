"""The CPU RL engine: a verifiable arithmetic task, a tiny GRU policy, and a training loop that wires the
value model, the rollout planner and the baseline registry into a clipped policy-gradient update.

``train(TrainConfig(...), out_dir)`` runs one method (``setup`` + ``train_loop`` for callers that want the
two apart); the comparison harness behind ``v05 demo`` lives in :mod:`v05.bench.demo`. The pieces stand
alone too: :class:`Policy`, :class:`Sampler` over a :class:`PromptSet`, :func:`policy_update`, the task.
The math-verify reward and the math benchmarks of the GPU recipes live below the engine, in :mod:`v05.tasks`.
"""

from v05.rl.checkpoint import CheckpointError
from v05.rl.config import (
    EvalConfig,
    MethodConfig,
    OptimConfig,
    PriorConfig,
    TaskConfig,
    TrainConfig,
    WarmupConfig,
)
from v05.rl.loop import RunResult, train, train_loop
from v05.rl.policy import Policy, PolicyConfig
from v05.rl.prompts import PromptSet, PromptStream
from v05.rl.sampler import Sampler
from v05.rl.setup import setup
from v05.rl.state import TrainState
from v05.rl.task import ArithmeticTask, exact_match_reward
from v05.rl.update import policy_update

__all__ = ["ArithmeticTask", "CheckpointError", "EvalConfig", "MethodConfig", "OptimConfig", "Policy", "PolicyConfig",
           "PriorConfig", "PromptSet", "PromptStream", "RunResult", "Sampler", "TaskConfig", "TrainConfig", "TrainState",
           "WarmupConfig", "exact_match_reward", "policy_update", "setup", "train", "train_loop"]
