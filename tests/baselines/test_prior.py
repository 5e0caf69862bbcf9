"""The per-prompt prior (:class:`v05.baselines.Prior`): checks when built, the alignment rule with the group ids,
and the per-group path giving exactly what the per-rollout arrays give."""

from __future__ import annotations

import inspect

import numpy as np
import pytest
from batch_strategies import batches
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from v05.baselines import (
    Prior,
    UndefinedError,
    compute,
    empirical,
    fused,
    get_estimator,
    list_estimators,
    pooled,
)

ALL = list_estimators()
PROPS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def per_prompt(batch: dict) -> tuple[Prior, np.ndarray]:
    """The batch's per-rollout prior as a Prior with ids (one row per group, in a shuffled order) and as a
    Prior without ids over the group ids renumbered 0..M-1; returns (prior with ids, renumbered groups)."""
    group = np.asarray(batch["group"])
    ids, first, inverse = np.unique(group, return_index=True, return_inverse=True)
    order = np.random.default_rng(len(ids)).permutation(len(ids))
    with_ids = Prior(batch["prior"][first][order], batch["prior_var"][first][order], ids=ids[order])
    return with_ids, inverse.reshape(-1)


def outcome(name, rewards, group, **kwargs):
    try:
        res = compute(name, rewards, group, **kwargs)
    except UndefinedError as e:
        return str(e)
    return res


def assert_same(a, b):
    if isinstance(a, str) or isinstance(b, str):
        assert a == b
        return
    for field in ("baseline", "advantage", "weight", "keep"):
        x, y = getattr(a, field), getattr(b, field)
        assert (x is None) == (y is None)
        if x is not None:
            np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize("name", ALL)
@PROPS
@given(batch=batches(min_groups=1, max_groups=5, min_size=1, max_size=6))
def test_per_group_and_per_rollout_priors_give_identical_results(name, batch):
    with_ids, renumbered = per_prompt(batch)
    rollout = outcome(name, batch["rewards"], batch["group"], prior=batch["prior"], prior_var=batch["prior_var"],
                      scale=batch["scale"])
    assert_same(outcome(name, batch["rewards"], batch["group"], prior=with_ids, scale=batch["scale"]), rollout)
    rows = np.argsort(with_ids.ids, kind="stable")  # row g of a Prior without ids is group id g
    by_index = Prior(with_ids.mean[rows], with_ids.var[rows])
    rollout = outcome(name, batch["rewards"], renumbered, prior=batch["prior"], prior_var=batch["prior_var"],
                      scale=batch["scale"])
    assert_same(outcome(name, batch["rewards"], renumbered, prior=by_index, scale=batch["scale"]), rollout)


@given(mean=st.lists(st.floats(0.0, 1.0), min_size=1, max_size=20), data=st.data())
@PROPS
def test_a_valid_prior_keeps_its_values_read_only(mean, data):
    var = data.draw(st.lists(st.floats(0.0, 1e6), min_size=len(mean), max_size=len(mean)))
    prior = Prior(mean, var)
    assert len(prior) == len(mean) and prior.mean.tolist() == mean and prior.var.tolist() == var
    with pytest.raises(ValueError, match="read-only"):
        prior.mean[0] = 0.5


@given(mean=st.lists(st.floats(0.0, 1.0), min_size=1, max_size=20), data=st.data())
@PROPS
def test_one_bad_value_is_named_with_its_row(mean, data):
    i = data.draw(st.integers(0, len(mean) - 1))
    bad = data.draw(st.sampled_from([np.nan, np.inf, -0.01, 1.01]))
    field = data.draw(st.sampled_from(["mean", "var"]))
    values = list(mean)
    values[i] = bad if field == "mean" or bad != 1.01 else -1.0
    kwargs = {"mean": values} if field == "mean" else {"mean": mean, "var": values}
    with pytest.raises(ValueError, match=rf"prior {field}\[{i}\] = "):
        Prior(**kwargs)


def test_prior_errors_name_the_field_the_row_and_the_id():
    with pytest.raises(ValueError, match=r"prior mean\[1\] = nan \(group 'b'\)"):
        Prior([0.5, np.nan], ids=["a", "b"])
    with pytest.raises(ValueError, match=r"prior var has 1 row\(s\) but prior mean has 2"):
        Prior([0.5, 0.5], [0.1])
    with pytest.raises(ValueError, match=r"prior ids has 3 row\(s\) but prior mean has 2"):
        Prior([0.5, 0.5], ids=["a", "b", "c"])
    with pytest.raises(ValueError, match=r"prior ids\[0\] = 'a' appears 2 times"):
        Prior([0.5, 0.5], ids=["a", "a"])
    with pytest.raises(TypeError, match="prior mean must be an array of float64 numbers"):
        Prior(["0.5"])
    with pytest.raises(ValueError, match="prior mean must be 1-D"):
        Prior([[0.5]])


def test_a_group_id_without_a_row_is_an_error_naming_it():
    rewards, group = [1.0, 0.0, 1.0], [0, 0, 3]
    with pytest.raises(ValueError, match=r"group id 3 has no row in the prior: a Prior without ids has rows 0\.\.1"):
        compute("v05", rewards, group, prior=Prior([0.5, 0.5]))
    with pytest.raises(ValueError, match=r"group id 'c' has no row in the prior"):
        compute("v05", rewards, ["a", "a", "c"], prior=Prior([0.5, 0.5], ids=["a", "b"]))
    with pytest.raises(TypeError, match=r"group ids are <U1 .*the prior has no ids"):
        compute("v05", rewards, ["a", "a", "b"], prior=Prior([0.5, 0.5]))


def test_rows_no_group_uses_are_allowed_and_ids_pick_the_rows():
    prior = Prior([0.9, 0.1, 0.3], ids=[7, 5, 6])
    res = compute("prior", [1.0, 0.0, 1.0], [5, 5, 7], prior=prior)
    assert res.baseline.tolist() == [0.1, 0.1, 0.9]
    assert compute("prior", [1.0, 0.0], [2, 0], prior=Prior([0.2, 0.4, 0.6])).baseline.tolist() == [0.6, 0.2]


def test_a_prior_carries_its_variance():
    for name in ("v05_prior_var", "v05_paper", "mean"):
        with pytest.raises(TypeError, match="prior is a Prior, which carries its own variance"):
            compute(name, [1.0, 0.0], [0, 0], prior=Prior([0.5], [0.1]), prior_var=[0.1, 0.1])
    with pytest.raises(ValueError, match="v05_prior_var weights the prior by its variance"):
        compute("v05_prior_var", [1.0, 0.0], [0, 0], prior=Prior([0.5]))
    assert Prior([0.5], [0.1]).without_var().var is None
    assert compute("mean", [1.0, 0.0], [0, 0], prior=Prior([0.5])).baseline.tolist() == [0.5, 0.5]


def test_coerce_takes_a_prior_or_a_mean_var_pair():
    prior = Prior([0.5])
    assert Prior.coerce(prior) is prior
    assert Prior.coerce(([0.5], [0.1])).var.tolist() == [0.1]
    with pytest.raises(TypeError, match="expected a Prior or a \\(mean, var\\) pair"):
        Prior.coerce([0.5])


@pytest.mark.parametrize("name", ALL)
def test_register_keeps_the_kernel_as_written(name):
    entry = get_estimator(name)
    functions = [f for module in (fused, empirical, pooled) for f in vars(module).values() if f is entry.kernel]
    assert functions, f"{name}'s kernel is not a module-level function of v05.baselines.fused, empirical or pooled"
    assert inspect.signature(functions[0]) == inspect.signature(entry.kernel)
    assert next(iter(inspect.signature(entry.kernel).parameters)) == "batch"
    assert list(inspect.signature(entry.fn).parameters)[:2] == ["rewards", "group"]
