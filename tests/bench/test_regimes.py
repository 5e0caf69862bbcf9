"""The regime map: conditions, paired intervals, and a tiny end-to-end run with its report."""

import dataclasses
import json

import numpy as np
import pytest
from scipy import stats

from v05.bench import regimes as rg
from v05.bench.regimes_report import write_report
from v05_testing.engine import TINY


def test_every_default_run_is_a_valid_config_and_the_fresh_pool_is_large_enough():
    settings = rg.RegimeSettings()
    assert len(settings.jobs()) == 2 * 2 * 2 * 5 * 3
    for c, m, s in settings.jobs():
        cfg = settings.config(c, m, s)
        assert cfg.total_rollouts == settings.total_rollouts and cfg.seed == s
    osla = settings.config((2, "fresh", "u-shaped"), "V0.5 + OSLA", 0)
    assert (osla.osla.k_init, osla.osla.k_max, osla.task.stream, osla.warmup.max_terms) == (2, 8, "fresh", 4)
    assert settings.config((4, "recurring", "spread"), "V0.5 oracle prior", 1).prior.source == "exact"


def test_the_later_methods_are_valid_runs_but_not_in_the_registered_default():
    assert rg.RegimeSettings().methods == rg.REGISTERED
    later = rg.RegimeSettings(methods=("GRPO", "Dr. GRPO", "V0.5 leave-one-out"))
    estimators = {m: later.config((2, "recurring", "spread"), m, 0).method.estimator for m in later.methods}
    assert estimators == {"GRPO": "grpo", "Dr. GRPO": "dr_grpo", "V0.5 leave-one-out": "v05_eb_loo"}


def test_the_value_free_set_changes_only_the_prior_or_the_estimator():
    settings = rg.RegimeSettings(methods=rg.PRESETS["value-free"])
    cfgs = {m: settings.config((2, "fresh", "spread"), m, 0) for m in settings.methods}
    assert {m: (c.method.estimator, c.prior.source, c.group_size) for m, c in cfgs.items()} == {
        "GRPO": ("grpo", "value_model", 2), "V0.5": ("v05", "value_model", 2),
        "V0.5 history prior": ("v05", "history", 2), "EB batch": ("eb_batch", "none", 2),
        "V0.5 calibrated": ("v05_eb_reg", "value_model", 2)}
    assert len(settings.jobs()) == 8 * 5 * 3


@pytest.mark.parametrize("k", [2, 4])
def test_every_rule_starts_at_k_and_caps_at_4k_with_the_v05_estimator(k):
    settings = rg.RegimeSettings(methods=rg.PRESETS["rules"])
    for method in settings.methods:
        cfg = settings.config((k, "recurring", "u-shaped"), method, 0)
        assert cfg.group_size == k, method
        if cfg.method.allocation == "osla":
            assert cfg.method.estimator == "v05" and cfg.prior.source == "value_model"
            assert cfg.plan_rule.k_max == 4 * k, method
    rule = {m: settings.config((k, "fresh", "spread"), m, 0).plan_rule
            for m in ("Reinforce-Ada", "Knapsack", "CurES", "Dynamic sampling", "OSLA eb", "OSLA 2 rounds", "V0.5 + OSLA")}
    assert (rule["Reinforce-Ada"].round_size, rule["Reinforce-Ada"].n, rule["Reinforce-Ada"].max_rounds) == (k, k, 3)
    assert all((rule[m].k_min, rule[m].k_per_prompt, rule[m].k_init) == (k, 2 * k, None) for m in ("Knapsack", "CurES"))
    assert (rule["Dynamic sampling"].k, rule["Dynamic sampling"].max_rounds) == (k, 3)
    assert (rule["OSLA eb"].rule, rule["OSLA eb"].max_rounds, rule["OSLA 2 rounds"].max_rounds) == ("eb", 2, 2)
    assert (rule["V0.5 + OSLA"].rule, rule["V0.5 + OSLA"].max_rounds) == ("paper", None)
    dapo = settings.config((k, "recurring", "spread"), "DAPO dynamic", 0)
    assert (dapo.method.allocation, dapo.method.estimator, dapo.prior.source) == ("dynamic", "dapo", "none")


def test_dapo_dynamic_runs_on_recurring_prompts_only():
    settings = rg.RegimeSettings(methods=("GRPO", "DAPO dynamic"))
    streams = [c[1] for c, m, s in settings.jobs() if m == "DAPO dynamic"]
    assert streams == ["recurring"] * (2 * 2 * 3)
    assert len(settings.jobs()) == 8 * 3 + 4 * 3
    with pytest.raises(ValueError, match="task.stream='fresh' reads every prompt once"):  # why it does not run there
        settings.config((2, "fresh", "spread"), "DAPO dynamic", 0)
    assert settings.config((4, "fresh", "spread"), "DAPO dynamic", 0).task.stream == "fresh"  # (fits, not registered)


def test_the_presets_and_the_registered_map_are_unchanged_by_the_later_sets():
    assert rg.PRESETS["registered"] == rg.REGISTERED == ("GRPO", "RLOO", "V0.5", "V0.5 oracle prior", "V0.5 + OSLA")
    assert all(m in rg.METHODS and rg.PRESETS[p][0] == "GRPO" for p in rg.PRESETS for m in rg.PRESETS[p])
    assert rg.sizes(rg.METHODS["V0.5 + OSLA"], 2) == {"osla.k_init": 2, "osla.k_max": 8, "osla.max_rounds": None}
    assert rg.sizes(rg.METHODS["GRPO"], 4) == {"method.group_size": 4}


def test_paired_interval_is_the_t_interval():
    d = np.array([0.01, -0.02, 0.03, 0.005])
    mean, lo, hi = rg.paired_interval(d)
    half = stats.t.ppf(0.975, 3) * d.std(ddof=1) / 2
    assert (mean, lo, hi) == pytest.approx((d.mean(), d.mean() - half, d.mean() + half))
    assert np.isnan(rg.paired_interval(np.array([0.1]))[1])


@pytest.mark.parametrize(("change", "message"), [
    ({"streams": ("once",)}, "streams: 'once' is not one of"),
    ({"methods": ("RLOO",)}, "methods must include 'GRPO'"),
    ({"group_sizes": (1,)}, "group size == 1, must be >= 2"),
])
def test_bad_settings_are_named(change, message):
    with pytest.raises(ValueError, match=message):
        rg.RegimeSettings(**change)


@pytest.mark.slow
def test_a_tiny_map_runs_and_reports(tmp_path):
    extra = {**TINY, "task.n_train": 128, "total_rollouts": 96, "eval.every_rollouts": 96}
    extra.pop("eval.every_rollouts")
    settings = rg.RegimeSettings(group_sizes=(2,), difficulties=("spread",), methods=("GRPO", "V0.5 oracle prior"),
                                 seeds=(0, 1), total_rollouts=96, recurring_prompts=64, fresh_prompts=128, workers=1,
                                 extra=tuple(extra.items()))
    done = []
    report = rg.run(settings, tmp_path, progress=done.append)
    assert done.count(None) == len(report["runs"]) == 2 * 2 * 2
    assert all(0 <= r["held_out"] <= 1 for r in report["runs"])
    grpo = [c for c in report["cells"] if c["method"] == "GRPO"]
    assert all(c["diff_to_grpo"] == 0 for c in grpo)
    start = report["start"][json.dumps([2, "fresh", "spread"])]
    assert sum(start["pool_histogram"]) == 128
    paths = write_report(report, tmp_path)
    assert "| k=2, fresh, spread |" in paths["markdown"].read_text() and paths["png"].stat().st_size > 5000


@pytest.mark.slow
def test_a_tiny_map_of_rules_counts_rounds_and_differences_to_v05(tmp_path):
    extra = {**TINY, "task.n_train": 128}
    extra.pop("eval.every_rollouts")
    settings = rg.RegimeSettings(group_sizes=(2,), streams=("recurring",), difficulties=("spread",),
                                 methods=("GRPO", "V0.5", "Reinforce-Ada", "DAPO dynamic"), seeds=(0, 1),
                                 total_rollouts=96, recurring_prompts=64, workers=1, extra=tuple(extra.items()))
    report = rg.run(settings, tmp_path)
    by = {(r["method"], r["seed"]): r for r in report["runs"]}
    for (method, seed), r in by.items():
        metrics = [json.loads(line) for line in
                   (tmp_path / "runs" / rg.run_name((2, "recurring", "spread"), method, seed) / "metrics.jsonl").open()]
        steps = [m for m in metrics if "budget/rounds" in m]
        assert (r["steps"], r["rounds"]) == (len(steps), sum(m["budget/rounds"] for m in steps))
        assert (r["rounds"] == r["steps"]) == (method in ("GRPO", "V0.5")), method  # fixed groups: one round a step
    cells = {c["method"]: c for c in report["cells"]}
    assert cells["V0.5"]["diff_to_v05"] == 0 and cells["GRPO"]["diff_to_grpo"] == 0
    ada = [by["Reinforce-Ada", s]["held_out"] - by["V0.5", s]["held_out"] for s in (0, 1)]
    assert cells["Reinforce-Ada"]["diff_to_v05"] == pytest.approx(np.mean(ada))
    assert cells["Reinforce-Ada"]["rounds_per_step"] >= 1
    text = write_report(report, tmp_path)["markdown"].read_text()
    assert "## Paired difference to V0.5 at fixed k" in text and "## Generation rounds" in text
    assert "DAPO dynamic - V0.5" in text


@pytest.mark.parametrize(("args", "fragments"), [
    (["--methods", "GRPO,EB batc"], ["methods: 'EB batc' is not one of"]),
    (["--methods", "rule"], ["methods: 'rule' is not one of"]),
    (["--methods", "V0.5,CurES"], ["methods must include 'GRPO'"]),
    (["--methods", "rules", "--difficulties", "spread,flat"], ["difficulties: 'flat' is not one of"]),
])
def test_the_cli_names_a_bad_method_set_before_any_run(tmp_path, monkeypatch, args, fragments):
    from typer.testing import CliRunner

    from v05.cli import app
    from v05_testing.cli import one_red_line

    def boom(*a, **k):
        raise AssertionError("reached the runs before checking the methods")

    monkeypatch.setattr(rg, "run", boom)
    one_red_line(CliRunner().invoke(app, ["bench", "rl-regimes", "--out", str(tmp_path / "o"), *args]), *fragments)
    assert not (tmp_path / "o").exists()


def test_every_method_has_a_colour_distinct_within_its_presets():
    from v05.bench.regimes_report import COLORS

    assert set(COLORS) == set(rg.METHODS) - {rg.REFERENCE}
    for methods in rg.PRESETS.values():
        colours = [COLORS[m] for m in methods if m != rg.REFERENCE]
        assert len(set(colours)) == len(colours)


def _part(difficulty: str, methods=("GRPO", "V0.5")) -> dict:
    settings = rg.RegimeSettings(group_sizes=(2,), streams=("recurring",), difficulties=(difficulty,), methods=methods,
                                 seeds=(0, 1))
    runs = [{"condition": list(c), "method": m, "seed": s, "held_out": 0.3 + 0.01 * s + 0.02 * (m == "V0.5"),
             "steps": 10, "rounds": 10} for c, m, s in settings.jobs()]
    return {"settings": {**dataclasses.asdict(settings)}, "start": {json.dumps(list(c)): {} for c in settings.conditions()},
            "runs": runs, "cells": rg.summarise(runs)}


def test_combine_joins_the_halves_of_a_map_in_the_map_s_order():
    both = rg.combine([_part("u-shaped"), _part("spread")])
    assert both["settings"]["difficulties"] == ["u-shaped", "spread"]
    assert list(both["start"]) == [json.dumps([2, "recurring", d]) for d in ("u-shaped", "spread")]
    assert len(both["runs"]) == 8 and len(both["cells"]) == 4
    assert all(c["diff_to_grpo"] == pytest.approx(0.02 if c["method"] == "V0.5" else 0) for c in both["cells"])
    with pytest.raises(ValueError, match="differ in more than their conditions"):
        rg.combine([_part("spread"), _part("u-shaped", ("GRPO", "RLOO"))])
    with pytest.raises(ValueError, match="in more than one report"):
        rg.combine([_part("spread"), _part("spread")])
