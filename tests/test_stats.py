import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from v05.stats import auc, coverage, ece, intra_context_auc, summarize


def test_auc_matches_sklearn_with_ties():
    rng = np.random.default_rng(0)
    score, label = rng.integers(0, 5, 300).astype(float), rng.random(300) < 0.4
    assert auc(score, label) == pytest.approx(roc_auc_score(label, score))
    assert np.isnan(auc(score, np.ones(300, bool)))


def test_intra_context_auc_ignores_offsets_between_policies():
    p = np.array([0.1, 0.9, 0.2, 0.8])
    group = np.array(["a", "a", "b", "b"])
    score = np.array([0.0, 0.1, 10.0, 10.1])  # right order within each policy, mixed across
    assert intra_context_auc(score, p, group) == 1.0
    assert auc(score, p >= 0.5) == 0.75


def test_ece_known_value():
    mean = np.array([0.05, 0.05, 0.95, 0.95])
    p = np.array([0.0, 0.2, 1.0, 1.0])
    assert ece(mean, p) == pytest.approx((2 * 0.05 + 2 * 0.05) / 4)


def test_coverage_is_nominal_for_a_calibrated_gaussian():
    rng = np.random.default_rng(0)
    mean, var = np.full(20000, 0.5), np.full(20000, 0.01)
    p = mean + rng.normal(0, np.sqrt(var + (0.25 - 0.01) / 1e9))
    assert coverage(mean, var, p, np.full(20000, 1e9), 0.9) == pytest.approx(0.9, abs=0.01)


def test_summarize_keys_and_coverage_only_on_multi_sample_rows():
    args = (np.array([0.2, 0.7]), np.array([0.0, 1.0]), np.array(["a", "a"]))
    out = summarize(*args, var=np.array([0.01, 0.01]), n_samples=np.array([10.0, 10.0]))
    assert set(out) == {"auc", "brier", "mse", "ece", "coverage_1sigma", "coverage_90"}
    assert set(summarize(*args, var=np.array([0.01, 0.01]), n_samples=np.array([1.0, 1.0]))) == {"auc", "brier", "mse", "ece"}


def test_bootstrap_rows_resample_within_groups():
    from v05.stats import bootstrap_rows, percentile_interval

    group = np.array(["a"] * 3 + ["b"] * 5)
    draws = list(bootstrap_rows(group, n_boot=20, seed=1))
    assert len(draws) == 20
    for rows in draws:
        assert len(rows) == 8 and np.all(group[rows[:3]] == "a") and np.all(group[rows[3:]] == "b")
    assert percentile_interval(np.arange(101.0), level=0.9) == pytest.approx((5.0, 95.0))
    assert np.isnan(percentile_interval([np.nan])[0])
