"""The arithmetic task: problems, encoding and the exact-match reward."""

import numpy as np
import pytest

from v05.rl.task import (
    EOS_ID,
    MAX_RESPONSE_LEN,
    MAX_TERMS,
    MIN_TERMS,
    PAD_ID,
    PROMPT_LEN,
    VOCAB,
    ArithmeticTask,
    decode_responses,
    encode_answers,
    encode_prompts,
    exact_match_reward,
    make_problems,
)


def test_answers_are_the_values_of_the_prompts():
    problems = make_problems(500, np.random.default_rng(0))
    for p in problems:
        assert p.prompt.endswith("=")
        assert int(p.answer) == eval(p.prompt[:-1])  # digits joined by + and - only
        assert p.level == (len(p.prompt) - 1 + 1) // 2
        assert MIN_TERMS <= p.level <= MAX_TERMS
        assert len(p.prompt) <= PROMPT_LEN and len(p.answer) + 1 <= MAX_RESPONSE_LEN
    assert len({p.prompt for p in problems}) == 500
    assert {p.level for p in problems} == set(range(MIN_TERMS, MAX_TERMS + 1))


def test_exclude_and_duplicates():
    rng = np.random.default_rng(1)
    held = {p.prompt for p in make_problems(100, rng)}
    assert not held & {p.prompt for p in make_problems(300, rng, exclude=held)}
    many = make_problems(3000, np.random.default_rng(2), distinct=False)
    assert len({p.prompt for p in many}) < 3000  # two-term problems repeat when not made distinct


def test_task_splits_are_disjoint_and_reproducible():
    a, b = ArithmeticTask.build(200, 50, seed=3), ArithmeticTask.build(200, 50, seed=3)
    assert a == b
    assert not {p.prompt for p in a.train} & {p.prompt for p in a.eval}
    assert (len(a.train), len(a.eval)) == (200, 50)


def test_encoding_round_trip():
    ids = encode_prompts(["1+2=", "9-8+7-6+5-4+3-2="])
    assert ids.shape == (2, PROMPT_LEN)
    assert (ids[0, : PROMPT_LEN - 4] == PAD_ID).all()
    assert "".join(VOCAB[i] for i in ids[1]) == "9-8+7-6+5-4+3-2="
    answers = encode_answers(["-12", "7"])
    assert decode_responses(answers) == ["-12", "7"]
    no_end = np.full((1, MAX_RESPONSE_LEN), VOCAB.index("3"))
    assert decode_responses(no_end) == ["33333?"]  # never matches an answer
    with pytest.raises(ValueError, match="longer than PROMPT_LEN"):
        encode_prompts(["1+2+3+4+5+6+7+8+9="])
    assert answers[0, 3] == EOS_ID


def test_exact_match_reward():
    assert exact_match_reward(["3", "-1", "03", ""], ["3", "-1", "3", "0"]).tolist() == [1.0, 1.0, 0.0, 0.0]
    with pytest.raises(ValueError, match="2 responses but 1 answers"):
        exact_match_reward(["1", "2"], ["1"])
