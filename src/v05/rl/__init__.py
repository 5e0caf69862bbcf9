"""The CPU RL engine: a verifiable arithmetic task, a tiny GRU policy, and the training loop that wires the
value model, the rollout planner and the baseline registry into a clipped policy-gradient update.

``train(TrainConfig(...), out_dir)`` runs one method; the comparison harness behind ``v05 demo`` lives in
:mod:`v05.bench.demo`. ``math_reward`` and ``load_math_benchmark`` serve GPU recipes.
"""

from v05.rl.config import TrainConfig
from v05.rl.loop import RunResult, train
from v05.rl.math_reward import load_math_benchmark, math_reward
from v05.rl.task import ArithmeticTask, exact_match_reward

__all__ = ["ArithmeticTask", "RunResult", "TrainConfig", "exact_match_reward", "load_math_benchmark", "math_reward", "train"]
