"""Every rollout rule at equal compute in the baseline benchmark (``v05 bench baseline --rules``): each rule runs
through the planner, the budget holds, rounds and groups with a gradient are counted, rules never shift the
other cells, bad settings fail in one red line."""

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from v05_testing.cli import one_red_line
from v05.baselines import DEFAULT, Prior
from v05.bench.baseline import BenchConfig, prior_sources, run
from v05.bench.baseline_rules import FIXED, RuleCells, RuleSpec, RulesConfig, fixed_allocation, mixed
from v05.bench.baseline_rules_report import winners
from v05.budget import Allocation, rule_names
from v05.cli import app
from v05.data import PassRateTable, save_table

EVERY = ("osla:paper", "osla:eb", "reinforce_ada", "reinforce_ada:positive_focused", "knapsack", "cures", "dynamic")
MOST_ROUNDS = {"osla:paper": 3, "osla:eb": 3, "reinforce_ada": 4, "reinforce_ada:positive_focused": 4, "knapsack": 2,
               "cures": 2, "dynamic": 9, FIXED: 1}
"""First round plus each rule's default max_rounds (Knapsack and CurES: the rest of the split in a second)."""


def table(n=256, seed=0) -> PassRateTable:
    rng = np.random.default_rng(seed)
    p = rng.beta(0.7, 0.7, size=n)
    return PassRateTable.from_columns(prompt_id=[f"q{i}" for i in range(n)], policy=["pi"] * n, pass_rate=p,
                                      prior=np.clip(p + rng.normal(0, 0.1, n), 0, 1))


@pytest.fixture(scope="module")
def result():
    t = table()
    rules = RulesConfig(EVERY, k_inits=(2, 4), budget_per_prompt=8)
    return run(t, prior_sources(t, [2.0], np.random.default_rng(0)),
               BenchConfig(ks=(2, 4, 8), seeds=2, estimators=("v05",), rules=rules), progress=False)


def test_every_registered_rule_runs_at_every_k_init_with_both_estimators(result):
    assert {RuleSpec.parse(s).name for s in EVERY} == set(rule_names())
    cells = {(r["rule"], r["k_init"], r["prior"], r["estimator"]) for r in result["rule_rows"]}
    expected = {(rule, k, prior, est) for rule in EVERY for k in (2, 4) for prior in ("table", "noise=2")
                for est in ("mean", DEFAULT)}
    expected |= {(FIXED, None, prior, est) for prior in ("table", "noise=2") for est in ("mean", DEFAULT)}
    assert cells == expected
    assert result["config"]["rules"] == {"rules": list(EVERY), "k_inits": [2, 4], "budget_per_prompt": 8}
    for r in result["rule_rows"]:
        assert np.isfinite(r["mse"]) and r["mse"] >= 0 and len(r["seeds"]["mse"]) == 2 and r["mse_ci95"] is not None


def test_equal_budget_holds_and_the_splits_spend_all_of_it(result):
    for r in result["rule_rows"]:
        assert (r["k_init"] or 8) <= r["mean_rollouts"] <= 8 + 1e-12, r
        assert max(r["seeds"]["mean_rollouts"]) <= 8 + 1e-12
        assert 1 <= r["rounds"] <= MOST_ROUNDS[r["rule"]]
        if r["rule"] in (FIXED, "knapsack", "cures"):  # the planned splits spend the whole budget
            assert r["seeds"]["mean_rollouts"] == [8.0, 8.0], r
    # the stopping rules use the budget differently: OSLA stops early on a good prior
    osla = next(r for r in result["rule_rows"] if (r["rule"], r["k_init"], r["prior"]) == ("osla:paper", 4, "table"))
    assert osla["mean_rollouts"] < 8


def test_each_batch_stays_within_its_budget_and_draws_from_one_table():
    """Per batch: at most budget_per_prompt x M rollouts, every prompt at least its first round, and prompt i's
    rewards (in drawing order) are the first of row i of the one table every rule shares."""
    rules = RulesConfig(EVERY, k_inits=(2, 4), budget_per_prompt=6)
    p = np.random.default_rng(3).beta(0.7, 0.7, size=40)
    prior = Prior(np.clip(p + 0.2, 0, 1))
    shared = (np.random.default_rng(7).random((40, rules.width())) < p[:, None]).astype(float)
    seen = set()
    for label, k_init, alloc in rules.allocations(prior, p, np.random.default_rng(7)):
        seen.add((label, k_init))
        assert alloc.counts.sum() <= 6 * 40 and alloc.counts.min() >= (k_init or 6)
        assert alloc.rounds <= MOST_ROUNDS[label]
        for i in range(40):
            assert np.array_equal(alloc.rewards[alloc.group == i], shared[i, : alloc.counts[i]]), (label, i)
    assert seen == {(FIXED, None)} | {(s, k) for s in EVERY for k in (2, 4)}


def test_rounds_and_groups_with_a_gradient_are_counted():
    cells = RuleCells()
    one = fixed_allocation(np.array([[1.0, 1.0], [0.0, 1.0], [0.0, 0.0]]), 2)
    two = Allocation(rewards=np.array([1.0, 0.0, 1.0, 1.0]), group=np.array([0, 0, 1, 1]), round=np.array([0, 0, 0, 1]),
                     counts=np.array([2, 2]), rounds=2)
    assert mixed(one).tolist() == [False, True, False] and mixed(two).tolist() == [True, False]
    cells.add(("r", 2, "p"), 0, one, {"mean": np.array([0.1, 0.2, 0.3])})
    cells.add(("r", 2, "p"), 0, two, {"mean": None})
    cells.add(("r", 2, "p"), 1, two, {"mean": np.array([0.5, 0.5])})
    (row,) = cells.rows()
    assert row["rounds"] == pytest.approx(5 / 3) and row["seeds"]["rounds"] == [1.5, 2.0]
    assert row["mixed"] == pytest.approx(3 / 7) and row["seeds"]["mixed"] == [pytest.approx(2 / 5), 0.5]
    assert row["mean_rollouts"] == 2 and row["mse"] == pytest.approx(1.6 / 5) and row["undefined_batches"] == 1


def test_rules_shift_no_other_cell():
    t = table(n=200)
    srcs = prior_sources(t, [1.0], np.random.default_rng(0))
    cfg = dict(ks=(2, 4), seeds=2, estimators=("v05",))
    plain = run(t, srcs, BenchConfig(**cfg), progress=False)
    ruled = run(t, srcs, BenchConfig(**cfg, rules=RulesConfig(("knapsack", "dynamic"))), progress=False)
    assert json.dumps(plain["rows"]) == json.dumps(ruled["rows"])
    assert "rule_rows" not in plain and "rules" not in plain["config"]


def test_winners_take_ties_paired_by_seed():
    def row(rule, values):
        return {"rule": rule, "mse": float(np.mean(values)), "seeds": {"mse": values}}

    rows = [row("a", [1.0, 2.0, 3.0]), row("b", [1.1, 2.1, 3.1]), row("c", [1.05, 1.8, 3.6])]
    assert winners(rows, "mse") == ["a", "c"]  # b is always 0.1 worse: its paired interval excludes 0
    mix = [{"rule": "a", "mixed": 0.5, "seeds": {"mixed": [0.5, 0.5]}},
           {"rule": "b", "mixed": 0.5, "seeds": {"mixed": [0.5, 0.5]}},
           {"rule": "c", "mixed": 0.4, "seeds": {"mixed": [0.4, 0.4]}}]
    assert winners(mix, "mixed") == ["a", "b"]


@pytest.mark.parametrize("specs, kwargs, message", [
    (("nope",), {}, "unknown rollout rule 'nope'; known: osla, reinforce_ada, knapsack, cures, dynamic"),
    (("knapsack:x",), {}, "rollout rule knapsack has no variant"),
    (("osla:pape",), {}, "osla:pape at k_init=4: rule='pape'; expected one of ('paper', 'eb')"),
    (("reinforce_ada:both",), {}, "exit"),
    (("dynamic", "dynamic"), {}, "rules lists a rule twice"),
    (("osla:eb",), {"k_inits": (1,)}, "k_init (1) must be >= 2"),
    (("dynamic",), {"k_inits": (16,)}, "dynamic at k_init=16 with budget_per_prompt=8: budget (8) is below k"),
    ((), {}, "rules is empty"),
])
def test_rule_settings_errors(specs, kwargs, message):
    with pytest.raises(ValueError, match=None) as err:
        RulesConfig(specs, **kwargs)
    assert message in str(err.value)


def test_cli_writes_the_rules_report(tmp_path):
    path = save_table(table(n=160), tmp_path / "t.csv")
    out = tmp_path / "out"
    res = CliRunner().invoke(app, ["bench", "baseline", "--table", str(path), "--k", "2,4,8", "--seeds", "2",
                                   "--estimators", "v05", "--rules", ",".join(EVERY), "--k-init", "2,4",
                                   "--budget-per-prompt", "8", "--out", str(out)])
    assert res.exit_code == 0, res.output
    data = json.loads((out / "baseline.json").read_text())
    assert {r["rule"] for r in data["rule_rows"]} == {FIXED, *EVERY}
    md = (out / "baseline.md").read_text()
    assert "## Every rollout rule at equal compute (8 rollouts per prompt)" in md and "### Which rule wins" in md
    assert "| 2 | reinforce_ada:positive_focused |" in md and "| - | fixed | 8.00 | 1.00 |" in md
    assert (out / "rules.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("extra, fragments", [
    (["--rules", "osla,nope"], ["--rules: unknown rollout rule 'nope'; known: osla, reinforce_ada"]),
    (["--rules", "cures:fast"], ["--rules: rollout rule cures has no variant"]),
    (["--rules", "osla:eb", "--k-init", "1"], ["--rules: osla:eb at k_init=1", "k_init (1) must be >= 2"]),
    (["--rules", "dynamic", "--k-init", "2,x"], ["--k-init: 'x' is not an integer"]),
    (["--rules", "dynamic", "--k-init", "8", "--budget-per-prompt", "4"], ["budget (4) is below k x prompts"]),
    (["--budget-per-prompt", "8"], ["--budget-per-prompt 8: the budget of the --rules runs; add --rules"]),
    (["--osla", "--k-init", "2,4"], ["--k-init '2,4': --osla runs one first round"]),
])
def test_cli_rejects_bad_rule_settings_in_one_red_line(tmp_path, nothing_runs, extra, fragments):
    res = CliRunner().invoke(app, ["bench", "baseline", "--table", "t.csv", "--out", str(tmp_path / "o")] + extra)
    one_red_line(res, *fragments)
