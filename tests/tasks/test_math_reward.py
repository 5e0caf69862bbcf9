"""Real math answers checked by math-verify, on a few rows of the shared benchmarks."""

import pytest

from v05.tasks.math_reward import BENCHMARKS, last_boxed, load_math_benchmark, math_reward


def test_last_boxed_balances_braces():
    assert last_boxed(r"so \boxed{1} then \boxed{\frac{1}{2}} done") == r"\frac{1}{2}"
    assert last_boxed("no box") is None
    assert last_boxed(r"\boxed{unclosed") is None


def test_reward_on_equivalent_and_wrong_answers():
    responses = [r"The answer is \boxed{\frac{1}{2}}.", "Thus x = 204.", r"\boxed{3}", "I do not know"]
    assert math_reward(responses, ["0.5", "204", "4", "7"]).tolist() == [1.0, 1.0, 0.0, 0.0]
    with pytest.raises(ValueError, match="1 responses but 2 answers"):
        math_reward(["1"], ["1", "2"])


@pytest.mark.shared_data
@pytest.mark.parametrize("name", BENCHMARKS)
def test_real_rows_score_their_own_reference(shared_data, name):
    rows = load_math_benchmark(name, shared_data / "math_benchmarks", limit=3)
    assert len(rows) == 3 and all(r.prompt and r.answer for r in rows)
    answers = [r.answer for r in rows]
    assert math_reward([f"Final answer: \\boxed{{{a}}}" for a in answers], answers).tolist() == [1.0, 1.0, 1.0]
    assert math_reward([r"\boxed{123456789}"] * 3, answers).tolist() == [0.0, 0.0, 0.0]


def test_loader_errors(tmp_path):
    with pytest.raises(ValueError, match="unknown benchmark 'gsm9k'"):
        load_math_benchmark("gsm9k", tmp_path)
    with pytest.raises(FileNotFoundError, match="gsm8k_test.jsonl not found"):
        load_math_benchmark("gsm8k", tmp_path)
