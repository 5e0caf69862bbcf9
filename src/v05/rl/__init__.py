"""The CPU RL engine: a verifiable arithmetic task, a tiny GRU policy, and the training loop that wires the
value model, the OSLA budget and the baseline registry into a clipped policy-gradient update.

``train(TrainConfig(...), out_dir)`` runs one method; ``run_demo`` compares V0.5 with GRPO and DAPO at
equal rollouts (the ``v05 demo`` command). ``math_reward`` and ``load_math_benchmark`` serve GPU recipes.
"""

from v05.rl.config import TrainConfig
from v05.rl.demo import DemoSettings, run_demo
from v05.rl.loop import RunResult, train
from v05.rl.math_reward import load_math_benchmark, math_reward
from v05.rl.task import ArithmeticTask, exact_match_reward

__all__ = ["ArithmeticTask", "DemoSettings", "RunResult", "TrainConfig", "exact_match_reward", "load_math_benchmark",
           "math_reward", "run_demo", "train"]
