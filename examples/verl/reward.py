"""verl custom reward (``reward.custom_reward_function.path=examples/verl/reward.py``): 1.0 when math-verify
finds the response's final answer (its last ``\\boxed{}``) equal to the ground truth, else 0.0; the same
checker as the evaluation (``v05.tasks.math_reward``)."""

from v05.tasks.math_reward import math_reward


def compute_score(data_source, solution_str, ground_truth, extra_info=None, **kwargs) -> float:
    """verl's reward signature; ``data_source`` and ``extra_info`` are not needed for a math answer check."""
    return float(math_reward([solution_str], [str(ground_truth)])[0])
