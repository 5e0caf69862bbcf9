"""``examples/trl_gpu_qwen3_4b.py --smoke --dry-run`` on CPU (what ``make gpu-smoke`` checks without a GPU): the
GPU smoke config, data, reward and TRL guard are checked without loading the 4B model; with a local model folder
one tiny step is trained and judged by the smoke run's own verdict; the verdict fails on what it should."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import pytest

pytest.importorskip("trl", reason="needs the v05[trl] extra (trl, datasets, accelerate)")
import torch
from trl_helpers import char_tokenizer, tiny_qwen2

from v05.integrations.trl import V05Config

pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning", "ignore::UserWarning")

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "trl_gpu_qwen3_4b.py"


@pytest.fixture(scope="module")
def example():
    spec = importlib.util.spec_from_file_location("trl_gpu_qwen3_4b", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run(example, capsys, *argv) -> tuple[int, str]:
    """Exit status and the last printed line of the example's main."""
    with pytest.raises(SystemExit) as exit_:
        example.main(list(argv))
    return exit_.value.code, capsys.readouterr().out.strip().splitlines()[-1]


def test_the_dry_run_checks_the_gpu_smoke_config_without_loading_a_model(example, capsys, tmp_path):
    code, line = run(example, capsys, "--smoke", "--dry-run", "--out", str(tmp_path))
    assert code == 0
    assert line.startswith("TRL smoke (dry run): PASS (64 prompts, arm v05_osla, V05GRPOTrainer config of 32 rows")
    assert "nothing loaded or trained" in line


def test_the_dry_run_trains_a_local_model_one_step_and_judges_it(example, capsys, tmp_path):
    folder = tmp_path / "tiny"
    tiny_qwen2().save_pretrained(folder)
    tokenizer = char_tokenizer()
    tokenizer.chat_template = "{% for m in messages %}{{ m['content'][:20] }}{% endfor %}"
    tokenizer.save_pretrained(folder)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        code, line = run(example, capsys, "--smoke", "--dry-run", "--model", str(folder), "--out", str(tmp_path))
    finally:
        torch.set_num_threads(threads)
    assert code == 0, line
    assert line.startswith("TRL smoke (dry run): PASS (1 steps, 1 generation batches in ")
    assert "rollouts/prompt" in line and "V0.5 overhead" in line


def logs(**changes) -> list[dict]:
    """TRL's log_history of a healthy 2-step, 1-batch V0.5 run, with ``changes`` applied to its first step."""
    first = {"step": 1, "loss": 0.1, "grad_norm": 0.5, "step_time": 10.0, "reward": 0.4,
             "v05/rollouts_per_prompt_mean": 6.0, "v05/undefined": 0.0, "v05/topup_rounds": 1.0, "v05/overhead_s": 0.1}
    first.update(changes)
    return [{k: v for k, v in first.items() if v is not None}, {"step": 2, "loss": 0.2, "grad_norm": 0.4,
                                                                "step_time": 10.0}, {"train_runtime": 20.0}]


@pytest.mark.parametrize("changes, seconds, problem", [
    ({}, 700.0, "took 700 s, over the 600 s limit"),
    ({"loss": math.nan}, 10.0, "loss not finite at step(s) [1]"),
    ({"grad_norm": None}, 10.0, "grad_norm not finite at step(s) [1]"),
    ({"reward": None}, 10.0, "no finite reward logged"),
    ({"reward": math.inf}, 10.0, "a reward is not finite"),
    ({"v05/rollouts_per_prompt_mean": None}, 10.0, "v05/rollouts_per_prompt_mean [nan] not all within 4..16"),
    ({"v05/rollouts_per_prompt_mean": 20.0}, 10.0, "v05/rollouts_per_prompt_mean [20.0] not all within 4..16"),
    ({"v05/undefined": 1.0}, 10.0, "the estimator was undefined on a generation batch"),
])
def test_the_verdict_fails_on_what_it_checks(example, tmp_path, changes, seconds, problem):
    args = V05Config(output_dir=str(tmp_path), use_cpu=True, bf16=False, num_generations=4,
                     per_device_train_batch_size=8, k_max=16)
    ok, summary = example.smoke_verdict(logs(), 10.0, 2, args)
    assert ok and summary.startswith("2 steps, 1 generation batches in 10 s; reward 0.400; rollouts/prompt 6.0")
    ok, summary = example.smoke_verdict(logs(**changes), seconds, 2, args)
    assert not ok and summary.startswith(problem)
    assert not example.smoke_verdict(logs(), 10.0, 3, args)[0]  # a step missing
