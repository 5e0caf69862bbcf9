"""The gradient benchmark: exact gradient, per-row score gradients, Gram-matrix figures against slow references."""

import json

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from v05_testing.cli import one_red_line
from v05_testing.engine import short_chain_policy
from v05.baselines import Prior
from v05.bench import gradient as gb
from v05.bench.gradient_report import write_report
from v05.cli import app
from v05.rl.exact import exact_pass_rates
from v05.rl.policy import Policy
from v05.rl.task import make_problems


@pytest.fixture(scope="module")
def policy():
    return short_chain_policy()


@pytest.fixture(scope="module")
def problems():
    return make_problems(6, np.random.default_rng(0), max_terms=3)


@pytest.fixture(scope="module")
def pool(policy, problems):
    return gb.build_pool(policy, problems, 16, torch.Generator().manual_seed(0), 1.0)


def test_exact_gradient_is_the_gradient_of_the_mean_pass_rate(policy, problems):
    p, g = gb.exact_gradient(policy, problems, 1.0)
    assert np.allclose(p, exact_pass_rates(policy, [q.prompt for q in problems], [q.answer for q in problems]))
    # A finite difference along the gradient: J(theta + eps g) - J(theta) ~ eps ||g||^2.
    eps = 1e-3
    shifted = Policy(policy.config)
    shifted.load_state_dict(policy.state_dict())
    with torch.no_grad():
        at = 0
        for param in shifted.parameters():
            param += eps * g[at : at + param.numel()].reshape(param.shape).float()
            at += param.numel()
    p2 = exact_pass_rates(shifted, [q.prompt for q in problems], [q.answer for q in problems])
    assert (p2.mean() - p.mean()) == pytest.approx(eps * float(g @ g), rel=0.05)


def test_monte_carlo_converges_to_the_exact_gradient(policy, problems, pool):
    pl, g = pool
    check = gb.monte_carlo_check(policy, problems, g, 4000, torch.Generator().manual_seed(1), 1.0, pl.pass_rate)
    assert check["cosine"] > 0.97 and check["rel_sq_error"] < 0.06
    assert check["half_rel_sq_error"] > check["rel_sq_error"]  # half the rollouts, more error


def test_pool_rows_are_distinct_and_every_correct_response_shares_one_row(policy, problems):
    rewards, row, (prompts, responses, mask) = gb.draw_pool(policy, problems, 16, torch.Generator().manual_seed(0), 1.0)
    assert rewards.shape == row.shape == (6, 16) and row.max() + 1 == len(prompts) == len(responses)
    for m in range(6):
        assert len(set(row[m][rewards[m] == 1].tolist())) <= 1
        assert not set(row[m]) & set(row[(m + 1) % 6])  # rows never cross prompts


def test_score_gradients_sum_like_one_backward_pass(policy, problems):
    _, _, (prompts, responses, mask) = gb.draw_pool(policy, problems, 8, torch.Generator().manual_seed(2), 1.0)
    scores = gb.score_gradients(policy, prompts, responses, mask, 1.0)  # (U, P)
    w = np.random.default_rng(0).normal(size=len(prompts))
    policy.zero_grad()
    (gb.sequence_logprobs(policy, prompts, responses, mask, 1.0).double() * torch.from_numpy(w)).sum().backward()
    assert np.allclose(w @ scores.astype(np.float64), gb.flat_grad(policy).numpy(), atol=1e-4)


def test_cell_stats_match_a_reference_loop_over_explicit_gradients(policy, problems):
    pass_rate, g = gb.exact_gradient(policy, problems, 1.0)
    rewards, row, (prompts, responses, mask) = gb.draw_pool(policy, problems, 16, torch.Generator().manual_seed(0), 1.0)
    scores = gb.score_gradients(policy, prompts, responses, mask, 1.0).astype(np.float64)  # (U, P)
    gram, along = gb.gram(scores, g.numpy(), chunk=1000)
    pl = gb.Pool(rewards, row, gram, along, float(g @ g), pass_rate, gb.optimal_baseline(rewards, row, gram))
    weights = np.random.default_rng(1).normal(size=(5, len(prompts)))
    stats = gb.cell_stats(weights, pl)
    g_np = g.numpy()
    est = weights @ scores  # (R, P): every estimate formed explicitly
    cos = [e @ g_np / np.linalg.norm(e) / np.linalg.norm(g_np) for e in est]
    a = sum(e @ g_np for e in est) / sum(e @ e for e in est)
    err = np.mean([np.sum((a * e - g_np) ** 2) for e in est]) / (g_np @ g_np)
    mean = est.mean(0)
    spread = np.mean([np.sum((e - mean) ** 2) for e in est])
    assert stats["cosine"] == pytest.approx(np.mean(cos), rel=1e-6)
    assert stats["scale"] == pytest.approx(a, rel=1e-6)
    assert stats["rel_sq_error"] == pytest.approx(err, rel=1e-6)
    errs = [np.sum((a * e - g_np) ** 2) / (g_np @ g_np) for e in est]
    assert stats["rel_sq_error_se"] == pytest.approx(np.std(errs, ddof=1) / np.sqrt(5), rel=1e-6)
    assert stats["rel_sq_error_raw"] == pytest.approx(np.mean([np.sum((e - g_np) ** 2) for e in est]) / (g_np @ g_np))
    assert stats["mean_rel_sq_error"] == pytest.approx((np.sum((mean - g_np) ** 2) - spread / 4) / (g_np @ g_np))


def test_identities_between_estimators(pool):
    """RLOO's advantages are the mean baseline's times k/(k-1): same cosine and same error after scaling;
    the 'prior' estimator with the oracle prior is the floor."""
    pl, _ = pool
    picks = gb.subsets(6, 16, 4, 30, np.random.default_rng(0))
    rloo, mean = (gb.estimate_cell(n, None, pl, picks) for n in ("rloo", "mean"))
    assert rloo["cosine"] == pytest.approx(mean["cosine"]) and rloo["rel_sq_error"] == pytest.approx(mean["rel_sq_error"])
    assert rloo["scale"] == pytest.approx(mean["scale"] * 3 / 4)
    floor = gb.estimate_cell(gb.FLOOR, None, pl, picks)
    oracle = gb.estimate_cell("prior", Prior(pl.pass_rate, np.zeros(6)), pl, picks)
    assert oracle["rel_sq_error"] == pytest.approx(floor["rel_sq_error"])


def test_subsets_draw_without_replacement():
    picks = gb.subsets(3, 8, 8, 4, np.random.default_rng(0))
    assert picks.shape == (4, 3, 8) and all(sorted(p.tolist()) == list(range(8)) for p in picks.reshape(-1, 8))


def test_a_snapshot_measures_every_cell_and_reports(policy, problems, tmp_path):
    settings = gb.GradientSettings(prompts=6, pool=8, repeats=5, group_sizes=(2, 4), mc_rollouts=16, context=8,
                                   history=(4,), rule_k_init=(2,))
    context = make_problems(8, np.random.default_rng(5), max_terms=3)
    ticks = []
    snap = gb.measure_snapshot("tiny", policy, problems, context, settings, 1.0, lambda text, n: ticks.append(n))
    assert sum(ticks) == len(snap["cells"]) == gb.cell_count(
        gb.GradientSettings(**{**settings.__dict__, "snapshots": (0,)}))
    assert len(snap["cells"]) == 2 * (len(gb.rows_to_run(["a", "b", "c", "d"])) + 1) + 2 * len(gb.OSLA_CONFIGS) \
        + 7 * 2
    assert {c["prior"] for c in snap["cells"]} == {None, "value", "oracle", "noisy(0.5)", "halluc(0.1)", "history(4)"}
    assert all(np.isfinite(c["rel_sq_error"]) for c in snap["cells"])
    rules = [c for c in snap["cells"] if "rule" in c]
    assert all(0 < c["against_fixed"][n]["low"] <= c["against_fixed"][n]["ratio"] <= c["against_fixed"][n]["high"]
               for c in rules for n in ("v05_eb", "rloo"))
    assert {(r["against"], r["against_prior"]) for r in snap["ratios"]} == {
        ("eb_batch", None), ("js_loo", None), ("rloo", None), ("v05_eb", "history(4)"), ("v05_eb", "value")}
    report = {"settings": {**settings.__dict__, "temperature": 1.0}, "snapshots": [snap]}
    paths = write_report(report, tmp_path)
    assert json.loads(paths["json"].read_text())["snapshots"][0]["label"] == "tiny"
    assert "| v05_eb_mix | halluc(0.1) |" in paths["markdown"].read_text() and paths["png"].stat().st_size > 10_000


@pytest.mark.parametrize(("settings", "message"), [
    ({"group_sizes": (1,)}, "group size == 1, must be >= 2"),
    ({"group_sizes": (8,), "pool": 4}, r"group size 8 exceeds pool \(4\)"),
    ({"hallucination": 1.5}, "hallucination"),
    ({"rule_k_init": (4,), "pool": 8}, r"rule k_init 4 needs a pool of k_max = 4 k_init = 16"),
    ({"history": (0,)}, "history rollouts"),
])
def test_bad_settings_are_named(settings, message):
    with pytest.raises(ValueError, match=message):
        gb.GradientSettings(**settings)


def test_cli_rejects_bad_settings_in_one_line(tmp_path):
    res = CliRunner().invoke(app, ["bench", "gradient", "--out", str(tmp_path), "--k", "2,x"])
    one_red_line(res, "--k: 'x' is not an integer")
    res = CliRunner().invoke(app, ["bench", "gradient", "--out", str(tmp_path), "--k", "1"])
    one_red_line(res, "group size == 1, must be >= 2")
    res = CliRunner().invoke(app, ["bench", "gradient", "--out", str(tmp_path), "--rule-k-init", "1"])
    one_red_line(res, "rule k_init == 1, must be >= 2")
    res = CliRunner().invoke(app, ["bench", "gradient", "--out", str(tmp_path), "--history", "4,x"])
    one_red_line(res, "--history: 'x' is not an integer")


def test_the_optimal_constant_baseline_has_the_least_raw_error(pool):
    """Raw (unscaled) error is (1/k) E||(r - b) s||^2 + const in b: b* minimises it over constant baselines,
    so shifting it either way costs error (measured on the same repeats)."""
    pl, _ = pool
    picks = gb.subsets(6, 16, 4, 40, np.random.default_rng(3))
    best = gb.estimate_cell(gb.OPTIMAL, None, pl, picks)["rel_sq_error_raw"]
    for shift in (-0.2, 0.2):
        moved = gb.Pool(**{**pl.__dict__, "optimal": np.clip(pl.optimal + shift, 0, 1)})
        assert gb.estimate_cell(gb.OPTIMAL, None, moved, picks)["rel_sq_error_raw"] > best


def test_osla_repeats_follow_the_planner_and_average_each_prompt(pool):
    """A prior that is exact and certain stops every prompt at k_init: OSLA then equals fixed k = k_init drawn
    the same way, and a wrong prior draws more."""
    from v05.budget import OslaConfig

    pl, _ = pool
    config = OslaConfig(k_init=2, k_max=8)
    weights, drawn = gb.osla_weights("v05_eb", Prior(pl.pass_rate), pl, config, np.random.default_rng(0))
    assert drawn >= 2 * 6 and weights.shape == pl.along.shape
    cell = gb.osla_cell("v05_eb", Prior(pl.pass_rate), pl, config, 20, np.random.default_rng(0))
    wrong = gb.osla_cell("v05_eb", Prior(1 - pl.pass_rate), pl, config, 20, np.random.default_rng(0))
    assert 2 <= cell["rollouts_per_prompt"] <= wrong["rollouts_per_prompt"] <= 8
    # Reference: the same repeat's weights formed rollout by rollout.
    rng = np.random.default_rng(5)
    w, _ = gb.osla_weights("mean", Prior(pl.pass_rate), pl, OslaConfig(k_init=16, k_max=16), rng)
    ref = np.zeros_like(w)
    for j in range(6):
        r = pl.rewards[j]
        for i in range(16):
            ref[pl.row[j, i]] += (r[i] - r.mean()) / (6 * 16)
    assert np.allclose(w, ref)


def test_history_prior_is_the_beta_posterior_of_m_earlier_draws(policy, problems):
    """The history prior equals each batch prompt's Beta posterior around the Beta prior fitted by moments on
    every prompt of the history (batch and context), formed here from the same draws."""
    from v05.rl.prompts import PromptSet
    from v05.rl.sampler import Sampler, pass_rates
    from v05.value.history import beta_moments, fit_beta_prior

    context = make_problems(5, np.random.default_rng(7), max_terms=3)
    with torch.no_grad():
        got = gb.history_prior(policy, problems, context, 4, torch.Generator().manual_seed(3), 1.0)
        rates = pass_rates(Sampler(policy, PromptSet.from_problems(problems + context),
                                   torch.Generator().manual_seed(3), 1.0), 4)
    a0, b0 = fit_beta_prior(rates * 4, np.full(len(rates), 4.0))
    mean, var = beta_moments(a0 + rates[:6] * 4, b0 + 4 - rates[:6] * 4)
    assert np.allclose(got.mean, mean) and np.allclose(got.var, var)


def test_paired_ratio_and_its_interval():
    rng = np.random.default_rng(0)
    b = rng.gamma(2.0, size=300)
    exact = gb.paired_ratio(0.7 * b, b)  # a fixed multiple: no spread, a zero-width interval
    assert exact["ratio"] == pytest.approx(0.7) and exact["high"] - exact["low"] == pytest.approx(0, abs=1e-12)
    a = 0.9 * b + rng.normal(0, 0.1, 300)
    got = gb.paired_ratio(a, b)
    ratio = a.mean() / b.mean()
    half = 1.96 * np.sqrt(sum((x - ratio * y - (a - ratio * b).mean()) ** 2 for x, y in zip(a, b)) / 299) \
        / (np.sqrt(300) * b.mean())
    assert got["ratio"] == pytest.approx(ratio) and got["high"] - got["ratio"] == pytest.approx(half)


def test_interpolation_of_the_fixed_k_cells_is_log_log():
    ks, err, se = [2, 4, 8], [0.4, 0.2, 0.1], [0.04, 0.01, 0.01]
    assert gb.interpolate(ks, err, se, 4) == pytest.approx((0.2, 0.05))
    assert gb.interpolate(ks, err, se, np.sqrt(8))[0] == pytest.approx(np.sqrt(0.4 * 0.2))  # geometric midpoint
    assert gb.interpolate(ks, err, se, 16)[0] == pytest.approx(0.05)  # the last segment's line, extended
    assert gb.interpolate(ks, err, se, 1)[0] == pytest.approx(0.8)


def test_every_registered_rule_is_measured_within_its_budget(pool):
    from v05.budget import make_rule, rule_names

    pl, _ = pool
    assert {name for _, name, _ in gb.rule_configs(2)} == set(rule_names())
    prior = Prior(np.clip(pl.pass_rate + 0.2, 0, 1))
    for label, name, options in gb.rule_configs(2):
        rule = make_rule(name, options)
        weights, drawn, rounds = gb.plan_weights("rloo", None, prior, pl, rule, np.random.default_rng(1), 4 * 6)
        assert 2 * 6 <= drawn <= 4 * 6 and rounds >= 1 and weights.shape == pl.along.shape, label


def test_reinforce_ada_mirrors_the_engine(pool):
    """The estimator runs on each prompt's whole drawn pool; only update_rows enter the estimate, each prompt's
    kept rows averaged (reference: the same draws replayed by hand, rollout by rollout)."""
    from v05.baselines import compute
    from v05.budget import make_rule
    from v05.budget.plan import Allocation

    pl, _ = pool
    rule = make_rule("reinforce_ada", {"round_size": 2, "n": 2, "k_max": 8, "max_rounds": 3})
    weights, drawn, rounds = gb.plan_weights("mean", None, Prior(pl.pass_rate), pl, rule, np.random.default_rng(4))
    order = np.argsort(np.random.default_rng(4).random((6, 16)), axis=1)
    group, rewards, rows, taken = [], [], [], np.zeros(6, dtype=int)
    for r in range(rounds):  # replay: every prompt still short of its exit draws 2 more
        alloc = Allocation(np.array(rewards), np.array(group, dtype=int), np.zeros(len(group)),
                           np.bincount(group, minlength=6), r)
        pos, neg = rule.outcomes(alloc.rewards, alloc.group, 6)
        active = ~rule.exited(pos, neg) if r else np.ones(6, bool)
        for j in np.flatnonzero(active & (taken < 8)):
            for i in order[j, taken[j] : taken[j] + 2]:
                group.append(j), rewards.append(pl.rewards[j, i]), rows.append(pl.row[j, i])
            taken[j] += 2
    assert drawn == len(group)
    alloc = Allocation(np.array(rewards), np.array(group), np.zeros(len(group)), np.bincount(group, minlength=6), rounds)
    keep = rule.update_rows(alloc)
    adv = compute("mean", alloc.rewards, alloc.group).advantage  # the whole pool's mean as baseline
    ref = np.zeros_like(weights)
    for u, j, a, kept in zip(rows, group, adv, keep):
        if kept:
            ref[u] += a / (6 * keep[alloc.group == j].sum())
    assert np.allclose(weights, ref)
    assert all(keep[alloc.group == j].sum() == 2 for j in range(6))
