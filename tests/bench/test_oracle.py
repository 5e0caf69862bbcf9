"""The Bayes oracle: closed forms, a slow obvious loop, calibration, and its place in the benchmark and reports."""

import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from v05_testing.cli import one_red_line
from v05.bench.baseline import BenchConfig, BenchPrior, hallucination_prior, noise_prior, prior_sources, run
from v05.bench.oracle import (ORACLE, BinnedTruth, LogitNoiseTruth, clipped_logit, oracle_baseline, posterior_mean,
                              prior_bins)
from v05.cli import app
from v05.data import PassRateTable, save_table

GRID = (np.arange(20000) + 0.5) / 20000  # cell midpoints of [0, 1]


@pytest.mark.parametrize("a, b", [(1.0, 1.0), (0.5, 0.5), (2.0, 5.0), (3.0, 0.7)])
@pytest.mark.parametrize("k", [1, 4, 16])
def test_a_beta_prior_gives_the_beta_binomial_posterior_mean(a, b, k):
    """Each grid point weighted by the Beta(a, b) mass of its cell: E[p | s of k] = (a + s) / (a + b + k), up to
    the grid's resolution (cells of 5e-5)."""
    from scipy.special import betainc

    mass = np.diff(betainc(a, b, np.linspace(0.0, 1.0, len(GRID) + 1)))
    s = np.arange(k + 1)
    got = posterior_mean(GRID, np.tile(mass, (k + 1, 1)), s, np.full(k + 1, k))
    np.testing.assert_allclose(got, (a + s) / (a + b + k), atol=5e-5)


def test_a_point_mass_is_returned_exactly_and_no_rollouts_give_the_prior_mean():
    values = np.array([0.0, 0.3, 0.7, 1.0])
    point = np.array([[0.0, 0.0, 1.0, 0.0]] * 3)
    assert posterior_mean(values, point, np.array([0, 2, 4]), np.array([4, 4, 4])).tolist() == [0.7] * 3
    w = np.array([[1.0, 2.0, 3.0, 4.0]])
    np.testing.assert_allclose(posterior_mean(values, w, np.array([0]), np.array([0])), (w * values).sum() / w.sum())


def test_rollouts_impossible_under_the_truth_model_are_named():
    values = np.array([0.0, 1.0])
    with pytest.raises(ValueError, match=r"row 1: 2 successes in 4 rollouts are impossible under its truth model"):
        posterior_mean(values, np.ones((2, 2)), np.array([0, 2]), np.array([4, 4]))


# -- the fast oracle against a slow, obvious loop -------------------------------------------------------------


def _posterior(values_weights: list[tuple[float, float]], s: int, k: int) -> float:
    num = den = 0.0
    for u, w in values_weights:
        like = w * u**s * (1.0 - u) ** (k - s)
        num += like * u
        den += like
    return num / den


def _logit(u: float) -> float:
    u = min(max(u, 1e-3), 1.0 - 1e-3)
    return math.log(u / (1.0 - u))


def slow_noise_oracle(pass_rate, prior_logit, sd, fraction, row, s, k):
    """Weight of each distinct pass rate u: its count x ((1-f) phi((L - l)/sd) + f phi((L + l)/sd))."""
    big_l = prior_logit[row]
    pairs = []
    for u in sorted(set(pass_rate)):
        count = sum(1 for p in pass_rate if p == u)
        lu = _logit(u)
        if sd == 0:
            like = (1 - fraction) * (lu == big_l) + fraction * (lu == -big_l)
        else:
            like = (1 - fraction) * math.exp(-0.5 * ((big_l - lu) / sd) ** 2) + \
                fraction * math.exp(-0.5 * ((big_l + lu) / sd) ** 2)
        pairs.append((u, count * like))
    return _posterior(pairs, s, k)


def slow_binned_oracle(prior, truth, n_bins, row, s, k):
    """The other rows of the row's bin (bin = n_bins x rows with a smaller prior // n), plus one pseudo-row of
    the whole table's pass rates."""
    n = len(prior)

    def bin_of(x):
        return min(n_bins * sum(1 for q in prior if q < x) // n, n_bins - 1)

    mine = bin_of(prior[row])
    pairs = []
    for u in sorted(set(truth)):
        others = sum(1 for j in range(n) if j != row and truth[j] == u and bin_of(prior[j]) == mine)
        pairs.append((u, others + sum(1 for t in truth if t == u) / n))
    return _posterior(pairs, s, k)


@st.composite
def small_tables(draw):
    n = draw(st.integers(3, 24))
    levels = draw(st.sampled_from([[0.0, 0.5, 1.0], [0.0, 0.1, 0.2, 0.6, 0.9, 1.0], [0.25, 0.75], [0.0, 1.0, 0.3]]))
    truth = np.array(draw(st.lists(st.sampled_from(levels), min_size=n, max_size=n)))
    prior = np.array(draw(st.lists(st.sampled_from([0.0, 0.2, 0.5, 0.8, 1.0]) | st.floats(0, 1), min_size=n,
                                   max_size=n)))
    k = draw(st.integers(1, 6))
    rng = np.random.default_rng(draw(st.integers(0, 2**31)))
    return truth, prior, k, rng


def _rollouts(truth, rows, k, rng):
    group = np.repeat(np.arange(len(rows)), k)
    return (rng.random(len(group)) < truth[rows][group]).astype(float), group


@settings(max_examples=40, deadline=None)
@given(table=small_tables(), sd=st.sampled_from([0.0, 0.5, 1.0, 2.0]), fraction=st.sampled_from([0.0, 0.1, 0.5]))
def test_the_exact_noise_oracle_matches_the_slow_loop(table, sd, fraction):
    truth, _, k, rng = table
    logit = clipped_logit(truth) + rng.normal(0, sd, len(truth)) * (sd > 0)
    logit = np.where(rng.random(len(truth)) < fraction, -logit, logit)
    values, counts = np.unique(truth, return_counts=True)
    model = LogitNoiseTruth(values, counts, logit, sd, fraction)
    rows = rng.permutation(len(truth))[: max(1, len(truth) // 2)]
    rewards, group = _rollouts(truth, rows, k, rng)
    try:
        got = oracle_baseline(model, rows, rewards, group)
    except ValueError:  # sd = 0 and a mirrored prior whose truth is not a candidate: the loop must fail too
        with pytest.raises(ZeroDivisionError):
            for j, i in enumerate(rows):
                slow_noise_oracle(truth.tolist(), logit, sd, fraction, i, int(rewards[group == j].sum()), k)
        return
    want = [slow_noise_oracle(truth.tolist(), logit, sd, fraction, i, int(rewards[group == j].sum()), k)
            for j, i in enumerate(rows)]
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)


@settings(max_examples=40, deadline=None)
@given(table=small_tables(), n_bins=st.integers(1, 5))
def test_the_binned_oracle_matches_the_slow_loop(table, n_bins):
    truth, prior, k, rng = table
    model = BinnedTruth.fit(prior, truth, n_bins=n_bins)
    rows = rng.permutation(len(truth))
    rewards, group = _rollouts(truth, rows, k, rng)
    got = oracle_baseline(model, rows, rewards, group)
    want = [slow_binned_oracle(prior.tolist(), truth.tolist(), n_bins, i, int(rewards[group == j].sum()), k)
            for j, i in enumerate(rows)]
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)


def test_share_of_the_possible_gain_by_hand():
    from v05.bench.baseline_report import _share

    row = lambda mse: {"mse": float(np.mean(mse)), "seeds": {"mse": mse}}  # noqa: E731
    pooled, per_seed = _share(row([3.0, 5.0]), row([11.0, 9.0]), row([1.0, 1.0]))
    assert pooled == pytest.approx(1 - 3 / 9) and per_seed.tolist() == pytest.approx([0.8, 0.5])
    assert _share(row([3.0]), row([1.0]), row([1.0])) is None  # the mean at the limit: nothing to gain


def slow_value_oracle(prior, truth, row, s, k):
    """A discrete prior: the other rows with exactly the same prior, plus one pseudo-row of the table."""
    pairs = []
    for u in sorted(set(truth)):
        others = sum(1 for j in range(len(prior)) if j != row and truth[j] == u and prior[j] == prior[row])
        pairs.append((u, others + sum(1 for t in truth if t == u) / len(truth)))
    return _posterior(pairs, s, k)


@settings(max_examples=30, deadline=None)
@given(table=small_tables(), n=st.integers(16, 60))
def test_a_discrete_prior_is_binned_by_value(table, n):
    _, _, k, rng = table
    truth = rng.choice([0.0, 0.2, 0.5, 0.9, 1.0], size=n)
    prior = rng.choice([0.1, 0.4, 0.7, 0.95], size=n)  # 4 values <= sqrt(16): one bin each
    model = BinnedTruth.fit(prior, truth)
    assert model.by_value and "the other rows with the same prior" in model.how
    rows = np.arange(n)
    rewards, group = _rollouts(truth, rows, k, rng)
    want = [slow_value_oracle(prior.tolist(), truth.tolist(), i, int(rewards[group == i].sum()), k) for i in rows]
    np.testing.assert_allclose(oracle_baseline(model, rows, rewards, group), want, rtol=1e-9, atol=1e-12)


def test_a_prior_with_many_values_gets_equal_count_bins():
    prior = np.linspace(0, 1, 1000)
    model = BinnedTruth.fit(prior, np.round(prior, 1))
    assert not model.by_value and len(model.bin_counts) == 10 and model.bin_counts.sum(axis=1).tolist() == [100] * 10


def test_prior_bins_hold_equal_counts_and_keep_ties_together():
    prior = np.array([0.9, 0.1, 0.5, 0.5, 0.5, 0.3, 0.7, 0.2])
    bins = prior_bins(prior, 4)
    # rows with a smaller prior: .1: 0, .2: 1, .3: 2, .5: 3 (all three), .7: 6, .9: 7; bin = 4 x that // 8.
    # The tied .5s share bin 1 with .3, so bin 2 stays empty: ties outrank equal counts.
    assert bins.tolist() == [3, 0, 1, 1, 1, 1, 3, 0]
    assert prior_bins(np.arange(100.0), 10).tolist() == np.repeat(np.arange(10), 10).tolist()


# -- the oracle is the limit ------------------------------------------------------------------------------


def _table(n=3000, seed=0) -> PassRateTable:
    rng = np.random.default_rng(seed)
    p = rng.beta(0.6, 0.6, size=n).round(1)
    return PassRateTable.from_columns(prompt_id=[f"q{i}" for i in range(n)], policy=["pi"] * n, pass_rate=p,
                                      prior=np.clip(p + rng.normal(0, 0.2, n), 0, 1))


def test_the_oracle_beats_every_estimator_and_is_exact_for_an_exact_prior():
    table = _table()
    sources = prior_sources(table, [0.0, 1.0], np.random.default_rng(0), hallucination=[0.2])
    cfg = BenchConfig(ks=(2, 8), seeds=2, estimators=("mean", "v05_eb", "v05_eb_mix", "v05_paper", "v05_eb_beta"))
    result = run(table, sources, cfg, progress=False)
    for prior in ("table", "noise=1", "halluc=0.2"):
        for k in (2, 8):
            cell = {r["estimator"]: r["mse"] for r in result["rows"] if r["prior"] == prior and r["k"] == k}
            assert cell[ORACLE] < min(v for e, v in cell.items() if e != ORACLE), (prior, k, cell)
    assert all(r["mse"] == 0.0 for r in result["rows"] if r["estimator"] == ORACLE and r["prior"] == "noise=0")
    assert "exact" in result["oracle"]["noise=1"] and "estimated" in result["oracle"]["table"]


def test_the_exact_oracle_is_calibrated():
    """E[truth | oracle's baseline] = the baseline: within each decile of b the mean truth matches the mean b."""
    table = _table(n=20000, seed=1)
    truth = table.pass_rate
    rng = np.random.default_rng(2)
    rows = np.arange(len(truth))

    def worst_decile_gap(b):
        decile = np.minimum((10 * np.argsort(np.argsort(b))) // len(b), 9)
        return max(abs(truth[decile == d].mean() - b[decile == d].mean()) for d in range(10))

    for source in (noise_prior(truth, 1.0, rng), hallucination_prior(truth, 0.3, rng)):
        rewards, group = _rollouts(truth, rows, 2, rng)
        assert worst_decile_gap(oracle_baseline(source.truth, rows, rewards, group)) < 0.015
    # a model that does not know about the hallucinations is neither calibrated nor as good
    wrong = LogitNoiseTruth(source.truth.values, source.truth.counts, source.truth.prior_logit, 0.5, 0.0)
    right_b, wrong_b = (oracle_baseline(m, rows, rewards, group) for m in (source.truth, wrong))
    assert worst_decile_gap(wrong_b) > 0.1
    assert np.mean((wrong_b - truth) ** 2) > 2 * np.mean((right_b - truth) ** 2)


def test_hallucination_priors_mirror_about_the_fraction_asked_for():
    truth = _table(n=20000).pass_rate
    clean = hallucination_prior(truth, 0.0, np.random.default_rng(0))
    wrong = hallucination_prior(truth, 0.25, np.random.default_rng(0))
    assert wrong.name == "halluc=0.25" and wrong.truth.fraction == 0.25
    far = np.abs(wrong.prior - truth) > 0.5
    assert 0.1 < far.mean() < 0.25 and (np.abs(clean.prior - truth) > 0.5).mean() < 0.01
    np.testing.assert_allclose(np.mean((clean.prior - truth) ** 2), 0.005, atol=0.003)
    with pytest.raises(ValueError, match=r"hallucination fraction == 1.5, must be a finite number >= 0 and <= 1"):
        hallucination_prior(truth, 1.5, np.random.default_rng(0))


def test_hallucination_sources_come_last_and_shift_no_other_source():
    table = _table(n=200)
    a = prior_sources(table, [0.5, 2.0], np.random.default_rng(0))
    b = prior_sources(table, [0.5, 2.0], np.random.default_rng(0), hallucination=[0.1])
    assert [s.name for s in b] == ["table", "noise=0.5", "noise=2", "halluc=0.1"]
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x.prior, y.prior)


def test_a_source_without_a_truth_model_gets_one_estimated_from_the_table():
    table = _table(n=300)
    result = run(table, [BenchPrior("mine", table.prior)], BenchConfig(ks=(4,), seeds=1, estimators=("mean",)),
                 progress=False)
    assert result["oracle"] == {"mine": "estimated: the truths of the other rows in the row's prior bin (7 "
                                        "equal-count bins) plus one pseudo-row of the table's pass rates"}
    off = run(table, [BenchPrior("mine", table.prior)], BenchConfig(ks=(4,), seeds=1, estimators=("mean",),
              oracle=False), progress=False)
    assert off["oracle"] == {} and {r["estimator"] for r in off["rows"]} == {"mean"}


# -- reports and CLI ---------------------------------------------------------------------------------------


def test_cli_reports_the_oracle_as_the_limit(tmp_path):
    path = save_table(_table(n=256), tmp_path / "t.csv")
    out = tmp_path / "out"
    res = CliRunner().invoke(app, ["bench", "baseline", "--table", str(path), "--k", "2,4", "--seeds", "2",
                                   "--prior-noise", "1", "--hallucination", "0.1", "--estimators", "v05,v05_eb_mix",
                                   "--out", str(out)])
    assert res.exit_code == 0, res.output
    data = json.loads((out / "baseline.json").read_text())
    assert {r["prior"] for r in data["rows"] if r["estimator"] == ORACLE} == {"table", "noise=1", "halluc=0.1"}
    md = (out / "baseline.md").read_text()
    assert "| *oracle* (limit) |" in md and "## Against the limit (Bayes oracle)" in md
    assert "### prior: halluc=0.1" in md and "| v05_eb_mix | " in md
    assert "## Share of the possible gain" in md and "| halluc=0.1 | " in md
    for png in ("mse_vs_k.png", "mse_vs_prior.png"):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    res = CliRunner().invoke(app, ["bench", "baseline", "--table", str(path), "--k", "4", "--seeds", "1",
                                   "--no-oracle", "--out", str(tmp_path / "off")])
    assert res.exit_code == 0, res.output
    off = (tmp_path / "off" / "baseline.md").read_text()
    assert "*oracle*" not in off and "Against the limit" not in off


@pytest.mark.parametrize("value, shown", [("1.5", "'1.5' is out of range"), ("x", "'x' is not a number")])
def test_cli_rejects_a_bad_hallucination_fraction_before_reading_the_table(tmp_path, value, shown):
    res = CliRunner().invoke(app, ["bench", "baseline", "--table", str(tmp_path / "missing.csv"), "--hallucination",
                                   value, "--out", str(tmp_path / "o")])
    one_red_line(res, f"--hallucination: {shown}; expected comma-separated numbers in [0, 1]")
