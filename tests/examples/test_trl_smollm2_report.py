"""The report of ``examples/trl_smollm2_cpu.py`` on results of its shape: interim (one arm), very short runs."""

import importlib.util
import warnings
from pathlib import Path

import numpy as np
import pytest

PATH = Path(__file__).resolve().parents[2] / "examples" / "trl_smollm2_report.py"
spec = importlib.util.spec_from_file_location("trl_smollm2_report", PATH)
report = importlib.util.module_from_spec(spec)
spec.loader.exec_module(report)


def results(steps: int, arms: tuple[str, ...], seeds=(0,), eval_every: int = 5) -> dict:
    """``results.json`` as the script writes it, with random rewards and accuracies."""
    rng = np.random.default_rng(0)
    runs = []
    for seed in seeds:
        for arm in arms:
            extra = {"v05/overhead_s": 0.01, "v05/weight_mean": 0.3, "v05/prior_rejected_frac": 0.1,
                     "v05/prior_mean": 0.4, "v05/pass_rate_mean": 0.4, "v05/prior_mse": 0.05,
                     "v05/zero_advantage_frac": 0.0} if arm == "v05" else {}
            evals = sorted({0, *range(eval_every, steps + 1, eval_every), steps})
            runs.append({"arm": arm, "seed": seed, "wall_seconds": 60.0 * steps, "loadavg_before": [1.0, 1.0, 1.0],
                         "loadavg_after": [1.5, 1.0, 1.0],
                         "steps": [{"reward": float(r), "step_time": 20.0, "frac_reward_zero_std": 0.3, **extra}
                                   for r in rng.uniform(0.2, 0.6, steps)],
                         "evals": [{"step": s, "accuracy": float(rng.uniform(0.2, 0.5))} for s in evals]})
    return {"settings": {"steps": steps, "prompts_per_step": 4, "num_generations": 4, "max_completion_length": 32,
                         "learning_rate": 5e-6, "eval_every": eval_every, "threads": 1},
            "arms": ["grpo", "v05"], "results": runs, "timing_ab": None,
            "overhead": {"same_run_fraction": 0.001, "same_run_overhead_s": 0.1, "same_run_step_s": 100.0},
            "machine": {"cpus": 2, "torch_threads": 1, "trl": "1.16"}}


def test_interim_report_before_the_second_arm_has_runs_warns_nothing():
    data = results(2, ("grpo",))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        text = report.markdown(data)
    assert "| step | grpo |" in text and "v05" not in text.split("Held-out accuracy by step:")[1]


@pytest.mark.parametrize(("steps", "n"), [(1, 0), (2, 1), (7, 3), (30, 5)])
def test_first_and_last_steps_of_the_summary_do_not_overlap(steps, n):
    data = results(steps, ("grpo", "v05"))
    header, _, grpo, _ = report.summary_table(data)
    rewards = [s["reward"] for s in report.runs_of(data, "grpo")[0]["steps"]]
    cells = grpo.split(" | ")
    if n == 0:
        assert "train reward, all steps | -" in header and cells[4:6] == [f"{np.mean(rewards):.3f}", "-"]
    else:
        assert f"first {n} step" in header and f"last {n} step" in header
        assert cells[4:6] == [f"{np.mean(rewards[:n]):.3f}", f"{np.mean(rewards[-n:]):.3f}"]


@pytest.mark.parametrize("steps", [2, 30])
def test_every_legend_entry_is_a_drawn_line_and_steps_are_whole(steps):
    import matplotlib.pyplot as plt

    fig = report.figure(results(steps, ("grpo", "v05"), seeds=(0, 1)))
    try:
        for ax in fig.axes:
            lines = {line.get_label(): line for line in ax.get_lines()}
            for text in ax.get_legend().get_texts():
                line = lines[text.get_text()]
                assert len(line.get_xdata()) >= 2 or line.get_marker() not in ("None", "", None)
            ticks = [t for t in ax.get_xticks() if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]]
            assert ticks and all(float(t).is_integer() for t in ticks)
    finally:
        plt.close(fig)
