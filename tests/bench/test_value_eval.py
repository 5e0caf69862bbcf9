import numpy as np
import pytest

from v05.data import PassRateTable
from v05.bench.value_eval import bench_priors, evaluate, leave_policies_out
from v05.value import ValueModel
from v05.bench.value_eval import split_context
from v05.bench.value_rivals import CONTEXT_RIVALS


def test_evaluate_scores_every_method_on_the_same_queries(fitted, table):
    result = evaluate(table, fitted, split="half", seed=1)
    assert set(result["methods"]) == {"value", "value_cold", "value_meta", "value_meta_cold", "value_surface",
                                      "value_cold_surface", "history_mean", *CONTEXT_RIVALS}
    assert len(result["pass_rate"]) == len(table) - split_context(table, seed=1).sum()
    for mean, _ in result["predictions"].values():
        assert mean.shape == result["pass_rate"].shape
    m = result["methods"]
    assert m["context_mean"]["auc"] == 0.5
    assert m["value"]["auc"] > 0.8 and m["value"]["auc"] >= m["value_cold"]["auc"] - 0.02


def record_fits(monkeypatch):
    """Patch ValueModel.fit to record, per model instance, the training table."""
    trained_on = {}
    original = ValueModel.fit

    def recording_fit(self, *tables):
        trained_on[id(self)] = tables[0]
        return original(self, *tables)

    monkeypatch.setattr(ValueModel, "fit", recording_fit)
    return trained_on


@pytest.mark.parametrize("unseen_prompts", [False, True])
def test_leave_policies_out_never_trains_on_the_evaluated_policy(table, monkeypatch, unseen_prompts):
    # prompts q0..q9 are shared by all policies, the others are made specific to each policy
    shared = np.isin(table.prompt_id, [f"q{i}" for i in range(10)])
    texts = np.where(shared, table.prompt, np.char.add(table.prompt.astype(str), np.char.add(" @", table.policy.astype(str))))
    t = PassRateTable(**{**table.columns(), "prompt": texts})
    trained_on = record_fits(monkeypatch)
    models = leave_policies_out(t, n_folds=4, unseen_prompts=unseen_prompts, encoder="hashing-64", cache_dir=False, n_pairs=500)
    assert set(models) == set(t.policies)
    for pol, vm in models.items():
        train = trained_on[id(vm)]
        assert pol not in train.policies and len(train.policies) == 3
        own_prompts = set(t.prompt[t.policy == pol])
        assert bool(own_prompts & set(train.prompt)) is not unseen_prompts


def test_split_column_needs_the_column(table):
    with pytest.raises(ValueError, match="needs a 'split' column"):
        split_context(table, split="column")
    with pytest.raises(ValueError, match="expected 'half' or 'column'"):
        split_context(table, split="thirds")


def test_bench_priors_cover_every_row_out_of_context(fitted, table):
    prior, var = bench_priors(table, model=fitted, seed=0)
    assert prior.shape == var.shape == (len(table),)
    assert np.all((prior > 0) & (prior < 1) & (var > 0))
    # a row's own outcome never enters its prior: change one row, its prior stays
    changed = table.pass_rate.copy()
    changed[5] = 1.0 - changed[5]
    other = PassRateTable(**{**table.columns(), "pass_rate": changed})
    prior2, _ = bench_priors(other, model=fitted, seed=0)
    assert prior2[5] == pytest.approx(prior[5], abs=1e-12)
    assert not np.allclose(prior2, prior)


def test_bench_priors_refit_never_trains_on_the_predicted_policy(fitted, table, monkeypatch):
    trained_on = record_fits(monkeypatch)
    prior, var = bench_priors(table, model=fitted, refit_folds=2, seed=0)
    seen = [set(t.policies) for t in trained_on.values()]
    assert len(seen) == 2 and all(len(s) == 2 for s in seen) and not set.intersection(*seen)
    assert set.union(*seen) == set(table.policies)
    assert np.all((prior > 0) & (prior < 1) & (var > 0))


def test_bench_priors_errors(fitted, table):
    with pytest.raises(ValueError, match="no 'prompt' column"):
        bench_priors(PassRateTable.from_columns(prompt_id=["a"], policy=["p"], pass_rate=[0.5]), model=fitted)
    single = table.select(np.flatnonzero(table.policy == "pol0")[:1])
    with pytest.raises(ValueError, match="needs >= 2 per policy"):
        bench_priors(single, model=fitted)


def test_bootstrap_intervals_bracket_the_estimate(fitted, table):
    m = evaluate(table, fitted, split="half", seed=0, n_boot=50)["methods"]
    for name in ("value", "ridge", "length"):
        lo, hi = m[name]["auc_ci"]
        assert lo <= m[name]["auc"] <= hi and hi - lo < 0.3
        assert m[name]["ece_ci"][0] <= m[name]["ece"] + 1e-9


def test_out_of_domain_models_never_see_the_evaluated_prompts_or_policies(table, monkeypatch):
    from v05_testing.tables import topic_table as synthetic_table

    other = synthetic_table(n_policies=6, seed=5)  # policy names pol0..pol5 (pol0..pol3 as in `table`)
    other = PassRateTable(**{**other.columns(), "prompt": np.char.add(other.prompt.astype(str), " (other)")})
    mixed = PassRateTable(**{k: np.concatenate([a, b]) for (k, a), b in
                             zip(other.columns().items(), table.select(table.policy == "pol3").columns().values())})
    trained_on = record_fits(monkeypatch)
    kw = dict(encoder="hashing-64", cache_dir=False, n_pairs=200)
    single = leave_policies_out(table, n_folds=0, train_tables=[mixed], **kw)
    assert isinstance(single, ValueModel)
    assert not set(trained_on[id(single)].prompt) & set(table.prompt)  # pol3's rows on table's prompts dropped
    folds = leave_policies_out(table, n_folds=2, seed=0, train_tables=[mixed], **kw)
    for pol, vm in folds.items():
        train = trained_on[id(vm)]
        assert pol not in train.policies and not set(train.prompt) & set(table.prompt)
    record = evaluate(table, folds, split="half", rivals=False)["in_sample"]
    assert record == {"recorded": True, "n_policies": 4, "policies_in_training": [], "query_prompt_share": 0.0}
    with pytest.raises(ValueError, match="no training rows left"):
        leave_policies_out(table, n_folds=0, train_tables=[table], **kw)


def test_in_sample_record_and_warning(fitted, table):
    from v05.bench.value_eval import in_sample_warning

    record = evaluate(table, fitted, split="half", rivals=False)["in_sample"]
    assert record["policies_in_training"] == sorted(table.policies) and record["query_prompt_share"] == 1.0
    assert in_sample_warning(record).startswith("the model was trained on 4 of the 4 evaluated policies and 100%")
    refit = leave_policies_out(table, n_folds=2, encoder="hashing-64", cache_dir=False, n_pairs=200)
    record = evaluate(table, refit, split="half", rivals=False)["in_sample"]
    assert record["policies_in_training"] == [] and record["query_prompt_share"] == 1.0
    assert "under other policies" in in_sample_warning(record)
    assert in_sample_warning({**record, "query_prompt_share": 0.0}) is None
    assert "cannot tell" in in_sample_warning({**record, "recorded": False})


def test_bootstrap_intervals_match_the_slow_reference():
    """The block-wise bootstrap gives exactly the intervals of ``summarize`` on every resample."""
    from v05.stats import bootstrap_rows, percentile_interval, summarize
    from v05.bench.value_eval import _add_intervals

    rng = np.random.default_rng(3)
    g = rng.choice(np.array(["b#1", "a#0", "c#0"]), 300)
    p, mean = rng.random(300), rng.random(300)
    p[g == "c#0"] = 1.0  # one class only in this group: its AUC is undefined and left out
    methods = {"m": {}}
    _add_intervals(methods, {"m": (mean, None)}, p, g, n_boot=30, seed=5)
    reps = [summarize(mean[r], p[r], g[r]) for r in bootstrap_rows(g, n_boot=30, seed=5)]
    for key in ("auc", "brier", "ece"):
        assert methods["m"][f"{key}_ci"] == pytest.approx(percentile_interval([m[key] for m in reps]), abs=1e-12)
