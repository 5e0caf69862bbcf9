"""Test-time scaling strategies against a plain loop over every subset, plus their invariants."""

from __future__ import annotations

import itertools
import math
from collections import defaultdict

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from v05.evaluate.voting import NO_ANSWER, Pool, answer_ids, per_problem_accuracy, samples_to_match, scaling_curves


def reference(answer, correct, score, n):
    """Per problem, the mean over every n-subset of each strategy's expected accuracy (ties at random)."""
    out = defaultdict(list)
    for ids, ok, sc in zip(answer, correct, score):
        acc = defaultdict(list)
        for sub in itertools.combinations(range(len(ids)), n):
            for name, weights in (("majority", [1.0] * len(ids)), ("weighted", sc)):
                total = defaultdict(float)
                for j in sub:
                    if ids[j] != NO_ANSWER:
                        total[ids[j]] += weights[j]
                if not total:
                    acc[name].append(0.0)
                    continue
                best = max(total.values())
                top = [a for a, t in total.items() if math.isclose(t, best, rel_tol=1e-12)]
                right = {ids[j] for j in sub if ok[j]}
                acc[name].append(sum(a in right for a in top) / len(top))
            best = max(sc[j] for j in sub)
            chosen = [j for j in sub if sc[j] == best]
            acc["best_of_n"].append(sum(ok[j] for j in chosen) / len(chosen))
            acc["pass@n"].append(float(any(ok[j] for j in sub)))
        for name, values in acc.items():
            out[name].append(float(np.mean(values)))
    return {k: np.array(v) for k, v in out.items()}


@st.composite
def pools(draw, max_n=6):
    n_max = draw(st.integers(1, max_n))
    problems = draw(st.integers(1, 4))
    answer, correct, score = [], [], []
    for _ in range(problems):
        n_clusters = draw(st.integers(1, n_max))
        ids = draw(st.lists(st.integers(-1, n_clusters - 1), min_size=n_max, max_size=n_max))
        right = draw(st.sets(st.integers(0, n_clusters - 1), max_size=1))  # at most one correct final answer
        answer.append(ids)
        correct.append([i in right for i in ids])
        score.append(draw(st.lists(st.sampled_from([0.0, 0.25, 0.5, 0.9, 1.0]), min_size=n_max, max_size=n_max)))
    return np.array(answer), np.array(correct), np.array(score)


@settings(max_examples=150, deadline=None)
@given(pool=pools(), data=st.data())
def test_exact_subsets_match_the_plain_loop(pool, data):
    answer, correct, score = pool
    n = data.draw(st.integers(1, answer.shape[1]))
    got = per_problem_accuracy(Pool(answer, correct, score), n, max_subsets=10**6)
    want = reference(answer.tolist(), correct.tolist(), score.tolist(), n)
    for name in ("majority", "best_of_n", "weighted", "pass@n"):
        np.testing.assert_allclose(got[name], want[name], atol=1e-12, err_msg=name)


@settings(max_examples=60, deadline=None)
@given(pool=pools())
def test_invariants(pool):
    answer, correct, score = pool
    p = Pool(answer, correct, score)
    one = per_problem_accuracy(p, 1)
    np.testing.assert_allclose(one["majority"], correct.mean(axis=1))  # one sample: its own correctness
    np.testing.assert_allclose(one["pass@n"], correct.mean(axis=1))
    flat = per_problem_accuracy(Pool(answer, correct, np.full(score.shape, 0.5)), answer.shape[1])
    np.testing.assert_allclose(flat["weighted"], flat["majority"])  # equal scores: a plain vote
    for n in range(1, answer.shape[1] + 1):
        acc = per_problem_accuracy(p, n)
        for name in ("majority", "best_of_n", "weighted"):
            assert ((acc[name] >= 0) & (acc[name] <= acc["pass@n"] + 1e-12)).all()


def test_monte_carlo_subsets_agree_with_the_exact_mean():
    rng = np.random.default_rng(0)
    n_max, problems = 32, 40
    truth = rng.uniform(0.1, 0.7, problems)
    correct = rng.random((problems, n_max)) < truth[:, None]
    wrong = rng.integers(1, 6, (problems, n_max))
    answer = np.where(correct, 0, wrong)
    score = np.clip(np.where(correct, 0.7, 0.4) + rng.normal(0, 0.2, correct.shape), 0, 1)
    pool = Pool(answer, correct, score)
    exact = per_problem_accuracy(pool, 2, max_subsets=10**6)  # C(32, 2) = 496 subsets
    sampled = per_problem_accuracy(pool, 2, max_subsets=400, seed=1)
    for name in ("majority", "best_of_n", "weighted"):
        assert abs(sampled[name].mean() - exact[name].mean()) < 0.02


def test_curves_and_the_efficiency_headline():
    # a verifier that always prefers the right answer: weighted voting picks it whenever it was sampled
    answer = np.array([[0, 1, 1, 1], [0, 0, 1, 2]])
    correct = answer == 0
    score = np.where(correct, 0.9, 0.1)
    curves = scaling_curves(Pool(answer, correct, score), n_boot=200)
    assert curves["n"] == [1, 2, 4]
    assert curves["strategies"]["majority"]["mean"][-1] == pytest.approx(0.5)  # 1 vs 3 votes; 2 vs 1 + 1
    # N = 2: the right answer is in 3 of 6 pairs (problem 0) and 5 of 6 (problem 1): 2/3 > majority's 1/2 at N = 4
    assert curves["strategies"]["weighted"]["mean"][1] == pytest.approx((3 / 6 + 5 / 6) / 2)
    assert samples_to_match(curves, "weighted") == 2
    lo, hi = curves["strategies"]["majority"]["lo"][0], curves["strategies"]["majority"]["hi"][0]
    assert lo <= curves["strategies"]["majority"]["mean"][0] <= hi


def test_answer_ids_and_pool_errors():
    assert answer_ids([["1/2", "0.5", "1/2"]]).tolist() == [[0, 1, 0]]
    with pytest.raises(ValueError, match=r"problem 0: a solution with no answer is marked correct"):
        Pool(np.array([[-1, 0]]), np.array([[True, False]]))
    with pytest.raises(ValueError, match=r"answer cluster 0 holds correct and incorrect"):
        Pool(np.array([[0, 0]]), np.array([[True, False]]))
    with pytest.raises(ValueError, match=r"score\[0, 1\] = nan: verifier scores must be numbers in \[0, 1\]"):
        Pool(np.array([[0, 1]]), np.array([[True, False]]), np.array([[0.5, np.nan]]))
    with pytest.raises(ValueError, match=r"n == 3, must be <= the pool's 2 samples"):
        per_problem_accuracy(Pool(np.array([[0, 1]]), np.array([[True, False]])), 3)
