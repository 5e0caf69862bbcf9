"""The baseline-MSE benchmark and its CLI: output schema, numbers that must hold, clear errors."""

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from v05_testing.cli import one_red_line
from v05.baselines import DEFAULT
from v05.bench.baseline import BenchConfig, BenchPrior, noise_prior, prior_sources, run
from v05.budget import OslaConfig
from v05.cli import app
from v05.data import PassRateTable, save_table


def synthetic_table(n=256, seed=0, with_prior=True) -> PassRateTable:
    rng = np.random.default_rng(seed)
    p = rng.beta(0.7, 0.7, size=n)
    cols = dict(prompt_id=[f"q{i}" for i in range(n)], policy=["pi"] * n, pass_rate=p)
    if with_prior:
        cols["prior"] = np.clip(p + rng.normal(0, 0.05, n), 0, 1)
    return PassRateTable.from_columns(**cols)


def test_mean_mse_matches_bernoulli_variance():
    """The plain mean's MSE is E[p(1-p)]/k: the simulation must reproduce it."""
    table = synthetic_table(n=2000, with_prior=False)
    src = [BenchPrior("exact", table.pass_rate.copy())]
    result = run(table, src, BenchConfig(ks=(4,), seeds=2, estimators=("mean", "prior")), progress=False)
    rows = {r["estimator"]: r for r in result["rows"]}
    expected = np.mean(table.pass_rate * (1 - table.pass_rate)) / 4
    assert rows["mean"]["mse"] == pytest.approx(expected, rel=0.08)
    assert rows["prior"]["mse"] == 0.0
    assert rows["mean"]["mean_rollouts"] == 4


def test_default_beats_mean_with_good_prior_and_matches_it_with_useless_prior():
    table = synthetic_table(n=1024, with_prior=False)
    rng = np.random.default_rng(1)
    good, useless = noise_prior(table.pass_rate, 0.25, rng), noise_prior(table.pass_rate, 8.0, rng)
    result = run(table, [good, useless], BenchConfig(ks=(4,), seeds=2, estimators=("mean", DEFAULT)), progress=False)
    mse = {(r["estimator"], r["prior"]): r["mse"] for r in result["rows"]}
    assert mse[(DEFAULT, "noise=0.25")] < 0.5 * mse[("mean", "noise=0.25")]
    assert mse[(DEFAULT, "noise=8")] < 1.05 * mse[("mean", "noise=8")]


def test_osla_rows_report_rollouts_spent():
    table = synthetic_table(n=256)
    srcs = prior_sources(table, [4.0], np.random.default_rng(0))
    cfg = BenchConfig(ks=(4,), seeds=1, estimators=("mean", "v05_paper", DEFAULT),
                      oslas=(OslaConfig(max_rounds=None), OslaConfig(max_rounds=None, rule="eb")))
    result = run(table, srcs, cfg, progress=False)
    assert {r["osla"] for r in result["rows"]} == {None, "paper", "eb"}
    osla = {(r["estimator"], r["prior"]): r for r in result["rows"] if r["osla"] == "paper"}
    assert set(osla) == {("v05_paper", "table"), (DEFAULT, "table"), ("v05_paper", "noise=4"), (DEFAULT, "noise=4")}
    # a prior with small error stops early; a useless one buys more rollouts
    assert 4 <= osla[(DEFAULT, "table")]["mean_rollouts"] < osla[(DEFAULT, "noise=4")]["mean_rollouts"] <= 16


def test_undefined_estimators_are_left_out_not_faked():
    table = synthetic_table(n=64)
    result = run(table, prior_sources(table, [], np.random.default_rng(0)),
                 BenchConfig(ks=(1, 2), seeds=1, estimators=("rloo", "mean"), oracle=False), progress=False)
    assert {(r["estimator"], r["k"]) for r in result["rows"]} == {("mean", 1), ("mean", 2), ("rloo", 2)}
    assert result["undefined"] == ["rloo at k=1 (table)"]


def test_config_and_prior_errors():
    with pytest.raises(ValueError, match="unknown estimator 'nope'; known: dapo"):
        BenchConfig(estimators=("nope",))
    with pytest.raises(ValueError, match=r"ks\[1\] == 0, must be >= 1"):
        BenchConfig(ks=(2, 0))
    with pytest.raises(TypeError, match=r"ks\[0\] must be an int; got float 2.5"):
        BenchConfig(ks=(2.5,))
    with pytest.raises(ValueError, match="no prior"):
        prior_sources(synthetic_table(with_prior=False), [], np.random.default_rng(0))
    with pytest.raises(ValueError, match="sd == -1"):
        noise_prior(np.array([0.5]), -1, np.random.default_rng(0))


def test_cli_writes_json_markdown_and_plots(tmp_path):
    path = save_table(synthetic_table(n=200), tmp_path / "t.csv")
    out = tmp_path / "out"
    res = CliRunner().invoke(app, ["bench", "baseline", "--table", str(path), "--k", "2,4", "--seeds", "1",
                                   "--prior-noise", "0.5,3", "--osla", "--osla-rule", "paper,eb",
                                   "--out", str(out)])
    assert res.exit_code == 0, res.output
    data = json.loads((out / "baseline.json").read_text())
    assert data["default"] == DEFAULT
    priors = {r["prior"] for r in data["rows"]}
    assert priors == {"table", "noise=0.5", "noise=3"}
    for r in data["rows"]:
        assert set(r) >= {"estimator", "k", "prior", "mse", "mean_rollouts"}
        assert np.isfinite(r["mse"]) and r["mse"] >= 0
    assert any(r["estimator"] == "mean" for r in data["rows"])
    md = (out / "baseline.md").read_text()
    assert "| mean |" in md and f"**{DEFAULT}**" in md and "## OSLA rule 'eb'" in md
    for png in ("mse_vs_k.png", "mse_vs_prior.png"):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_rejects_bad_table(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt_id": "q", "policy": "p", "pass_rate": 2}\n')
    res = CliRunner().invoke(app, ["bench", "baseline", "--table", str(bad), "--out", str(tmp_path / "o")])
    one_red_line(res, "row 1, column 'pass_rate'")


def test_cli_value_prior_needs_prompt_text(tmp_path):
    path = save_table(synthetic_table(n=20), tmp_path / "t.jsonl")  # no 'prompt' column
    res = CliRunner().invoke(app, ["bench", "baseline", "--table", str(path), "--prior", "value",
                                   "--out", str(tmp_path / "o")])
    one_red_line(res, "--prior value", "prompt")


def test_a_one_prompt_table_runs_and_names_what_is_undefined(tmp_path):
    path = save_table(synthetic_table(n=1), tmp_path / "one.jsonl")
    res = CliRunner().invoke(app, ["bench", "baseline", "--table", str(path), "--k", "4", "--seeds", "1",
                                   "--out", str(tmp_path / "o")])
    assert res.exit_code == 0, res.output
    data = json.loads((tmp_path / "o" / "baseline.json").read_text())
    assert "v05_eb_loo at k=4 (table)" in data["undefined"]  # no other group to fit tau2 on
    assert {r["estimator"] for r in data["rows"]} >= {"mean", "rloo", DEFAULT}


# -- round caps, intervals, any subset of estimators --------------------------------------------------------


def test_round_caps_replay_the_uncapped_rewards():
    """A cap that never binds (k_max - k_init top-up rounds) reproduces the uncapped cell exactly, since it
    replays the same rewards; a cap of 1 uses at most 2 generation rounds per batch."""
    table = synthetic_table(n=300)
    srcs = prior_sources(table, [1.0], np.random.default_rng(0))
    cfg = BenchConfig(ks=(2, 4, 8), seeds=2, estimators=("v05",),
                      oslas=(OslaConfig(max_rounds=None), OslaConfig(max_rounds=None, rule="eb")),
                      max_rounds=(1, 12))
    result = run(table, srcs, cfg, progress=False)
    rows = {(r["estimator"], r["prior"], r["osla"], r["max_rounds"]): r for r in result["rows"] if r["osla"]}
    for rule in ("paper", "eb"):
        for prior in ("table", "noise=1"):
            free, loose, tight = (rows[(DEFAULT, prior, rule, cap)] for cap in (None, 12, 1))
            assert (loose["mse"], loose["mean_rollouts"], loose["rounds"]) == (free["mse"], free["mean_rollouts"],
                                                                               free["rounds"])
            assert tight["rounds"] <= 2 and tight["rounds"] <= free["rounds"]
    assert rows[(DEFAULT, "noise=1", "paper", None)]["rounds"] > 2
    assert result["config"]["max_rounds"] == [1, 12]


def test_fixed_k_cells_do_not_depend_on_caps_or_the_estimators_asked_for():
    table = synthetic_table(n=200)
    srcs = prior_sources(table, [0.5], np.random.default_rng(0))
    uncapped = (OslaConfig(max_rounds=None),)
    full = run(table, srcs, BenchConfig(ks=(2, 4), seeds=2, oslas=uncapped, max_rounds=(1, 2)), progress=False)
    some = run(table, srcs, BenchConfig(ks=(2, 4), seeds=2, estimators=("v05",), oslas=uncapped), progress=False)
    key = lambda r: (r["estimator"], r["k"], r["prior"], r["osla"], r["max_rounds"])
    full_rows = {key(r): r["mse"] for r in full["rows"]}
    assert all(full_rows[key(r)] == r["mse"] for r in some["rows"])
    assert {r["estimator"] for r in some["rows"]} == {"mean", DEFAULT, "oracle"}  # the alias resolved, the mean added


def test_every_cell_has_per_seed_values_and_a_95_interval():
    table = synthetic_table(n=128)
    cfg = BenchConfig(ks=(4,), seeds=3, estimators=("mean",))
    row = run(table, prior_sources(table, [], np.random.default_rng(0)), cfg, progress=False)["rows"][0]
    assert len(row["seeds"]["mse"]) == 3 and row["mse"] == pytest.approx(np.mean(row["seeds"]["mse"]))
    assert row["mse_ci95"] > 0
    one = run(table, prior_sources(table, [], np.random.default_rng(0)), BenchConfig(ks=(4,), seeds=1,
              estimators=("mean",)), progress=False)["rows"][0]
    assert one["mse_ci95"] is None


def test_an_estimator_undefined_on_some_batches_is_reported_not_hidden():
    """129 rows in batches of 128: the last batch holds one prompt, where v05_eb_loo cannot fit tau2."""
    table = synthetic_table(n=129)
    cfg = BenchConfig(ks=(4,), seeds=1, estimators=("v05_eb_loo",))
    result = run(table, prior_sources(table, [], np.random.default_rng(0)), cfg, progress=False)
    row = next(r for r in result["rows"] if r["estimator"] == "v05_eb_loo")
    assert row["undefined_batches"] == 1
    assert result["partly_undefined"] == ["v05_eb_loo at k=4 (table): undefined on 1 of 2 batches (left out of its MSE)"]


def test_osla_needs_an_estimator_that_fuses_a_prior():
    with pytest.raises(ValueError, match=r"OSLA runs score the estimators that fuse a prior, and none of \['mean', "
                                         r"'grpo'\] does"):
        BenchConfig(estimators=("mean", "grpo"), oslas=(OslaConfig(max_rounds=None),))
    with pytest.raises(ValueError, match=r"max_rounds caps OSLA runs"):
        BenchConfig(max_rounds=(1,))
    with pytest.raises(ValueError, match=r"oslas are the uncapped runs"):
        BenchConfig(oslas=(OslaConfig(max_rounds=2),))


@pytest.mark.parametrize("estimators", ["v05", "mean,grpo", "mean"])
def test_cli_plots_any_subset_of_estimators(tmp_path, estimators):
    path = save_table(synthetic_table(n=150), tmp_path / "t.csv")
    out = tmp_path / "out"
    args = ["bench", "baseline", "--table", str(path), "--k", "1,4", "--seeds", "2", "--estimators", estimators,
            "--out", str(out)]
    if estimators == "v05":
        args += ["--osla", "--osla-max-rounds", "none,1"]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    for png in ("mse_vs_k.png", "mse_vs_prior.png") + (("osla_rounds.png",) if "--osla" in args else ()):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    md = (out / "baseline.md").read_text()
    assert "| mean |" in md and " ± " in md


def test_cli_osla_max_rounds_rows_are_keyed_by_rule_and_cap(tmp_path):
    path = save_table(synthetic_table(n=128), tmp_path / "t.jsonl")
    res = CliRunner().invoke(app, ["bench", "baseline", "--table", str(path), "--k", "4,16", "--seeds", "1",
                                   "--estimators", "v05", "--osla", "--osla-rule", "paper,eb",
                                   "--osla-max-rounds", "none,1,2", "--out", str(tmp_path / "o")])
    assert res.exit_code == 0, res.output
    data = json.loads((tmp_path / "o" / "baseline.json").read_text())
    keys = {(r["osla"], r["max_rounds"]) for r in data["rows"] if r["osla"]}
    assert keys == {(rule, cap) for rule in ("paper", "eb") for cap in (None, 1, 2)}
    md = (tmp_path / "o" / "baseline.md").read_text()
    assert "| table | v05_eb | 1 |" in md and "| max_rounds | rounds |" in md
