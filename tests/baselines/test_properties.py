"""Contract suite over the whole registry (in the manner of scikit-learn's ``parametrize_with_checks``).

Every registered estimator gets every check; estimator-specific expectations are keyed on the registry
entry (``uses_prior``, ``needs_prior_var``) or on the ``_loo`` suffix, never on a hand-kept list that
could drift from the registry.
"""

from __future__ import annotations

import numpy as np
import pytest
from batch_strategies import batches, has_inexact_equal_group
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from v05.baselines import compute, get_estimator, list_estimators

ALL = list_estimators()
FUSED = [n for n in ALL if get_estimator(n).uses_prior]
NEEDS_VAR = [n for n in ALL if get_estimator(n).needs_prior_var]
TOL = {"rtol": 1e-9, "atol": 1e-12}
PROPS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
# Groups of >= 2 rollouts and >= 2 groups: every estimator is defined on these.
valid_batches = batches(min_groups=2, max_groups=5, min_size=2, max_size=6)


def run(name, batch, **options):
    entry = get_estimator(name)
    return compute(
        name, batch["rewards"], batch["group"],
        prior=batch["prior"] if entry.uses_prior else None,
        prior_var=batch["prior_var"] if entry.needs_prior_var else None,
        scale=batch["scale"], **options,
    )


def lo_width(scale):
    lo, hi = {"binary": (0.0, 1.0), "pm1": (-1.0, 1.0)}[scale] if isinstance(scale, str) else scale
    return lo, hi - lo


def assert_same(a, b, tol=TOL):
    np.testing.assert_allclose(a.baseline, b.baseline, **tol)
    np.testing.assert_allclose(a.advantage, b.advantage, **tol)
    assert (a.weight is None) == (b.weight is None)
    if a.weight is not None:
        np.testing.assert_allclose(a.weight, b.weight, **tol)
    np.testing.assert_array_equal(a.keep, b.keep)


# -- outputs ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ALL)
@PROPS
@given(batch=valid_batches)
def test_shapes_dtypes_and_weights_in_unit_interval(name, batch):
    out = run(name, batch)
    n = len(batch["rewards"])
    for arr in (out.baseline, out.advantage):
        assert arr.shape == (n,) and arr.dtype == np.float64
        assert np.isfinite(arr).all()
    assert out.keep.shape == (n,) and out.keep.dtype == np.bool_
    if get_estimator(name).uses_prior:
        assert out.weight is not None and out.weight.shape == (n,) and out.weight.dtype == np.float64
        assert ((out.weight >= 0.0) & (out.weight <= 1.0)).all()
    else:
        assert out.weight is None


# v05_eb_reg(_loo) shrink toward a line fitted on the batch, not toward V: test_pooled.py
@pytest.mark.parametrize("name", [n for n in FUSED if not n.startswith("v05_eb_reg")])
@PROPS
@given(batch=valid_batches)
def test_fused_baseline_lies_between_prior_and_mean(name, batch):
    """b = w v + (1 - w) V: between V and v (for LOO: the mean of the *other* rollouts)."""
    out = run(name, batch)
    lo, width = lo_width(batch["scale"])
    prior = lo + width * batch["prior"]
    mean = run("rloo" if name.endswith("_loo") else "mean", batch).baseline
    assert (out.baseline >= np.minimum(prior, mean) - 1e-12).all()
    assert (out.baseline <= np.maximum(prior, mean) + 1e-12).all()
    # and the weight says where: b - V = w (v - V)
    np.testing.assert_allclose(out.baseline - prior, out.weight * (mean - prior), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("name", ["mean", "dr_grpo", "grpo", "dapo"])
@PROPS
@given(batch=valid_batches)
def test_group_centred_advantages_sum_to_zero_in_each_group(name, batch):
    out = run(name, batch)
    groups = np.asarray(batch["group"])
    for g in np.unique(groups):
        # 1e-8, not 1e-15: an all-equal group of non-dyadic rewards gets |A| ~ 1e-9 instead of 0 (the
        # float mean and the unit-scale round trip are off by an ulp, divided by eps = 1e-6); see
        # test_edge_cases.py::test_all_equal_group_advantage_is_exactly_zero
        assert abs(out.advantage[groups == g].sum()) < 1e-8


# -- invariances --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ALL)
@PROPS
@given(batch=valid_batches, data=st.data())
def test_permuting_rollouts_permutes_outputs(name, batch, data):
    n = len(batch["rewards"])
    perm = np.array(data.draw(st.permutations(range(n))))
    shuffled = dict(batch, rewards=batch["rewards"][perm], group=np.asarray(batch["group"])[perm],
                    prior=batch["prior"][perm], prior_var=batch["prior_var"][perm])
    a, b = run(name, batch), run(name, shuffled)
    np.testing.assert_allclose(b.baseline, a.baseline[perm], **TOL)
    np.testing.assert_allclose(b.advantage, a.advantage[perm], **TOL)
    if a.weight is not None:
        np.testing.assert_allclose(b.weight, a.weight[perm], **TOL)
    np.testing.assert_array_equal(b.keep, a.keep[perm])


@pytest.mark.parametrize("name", ALL)
@PROPS
@given(batch=valid_batches, data=st.data())
def test_relabelling_groups_changes_nothing(name, batch, data):
    old = [g.item() if hasattr(g, "item") else g for g in batch["group"]]
    labels = sorted(set(old), key=str)
    style = data.draw(st.sampled_from(["reversed_ints", "strings", "big_negative"]))
    new_ids = {
        "reversed_ints": lambda j: len(labels) - j,
        "strings": lambda j: f"prompt-{(7 * j) % 11:02d}",
        "big_negative": lambda j: -(10**9) + 3 * j,
    }[style]
    order = data.draw(st.permutations(range(len(labels))))
    rename = {lab: new_ids(order[j]) for j, lab in enumerate(labels)}
    a, b = run(name, batch), run(name, dict(batch, group=[rename[g] for g in old]))
    assert_same(a, b)


def _equal_groups(batch: dict) -> set:
    """Labels of the groups whose rewards are all exactly equal."""
    rewards: dict = {}
    for r, g in zip(np.asarray(batch["rewards"]).tolist(), batch["group"]):
        rewards.setdefault(g.item() if hasattr(g, "item") else g, set()).add(r)
    return {g for g, values in rewards.items() if len(values) == 1}


@pytest.mark.parametrize("name", ALL)
@PROPS
@given(batch=batches(min_groups=2, max_groups=5, min_size=2, max_size=6, scales=("binary",)))
def test_pm1_baselines_are_twice_binary_minus_one(name, batch):
    batch = dict(batch, rewards=batch["rewards"].astype(np.float64))
    pm1_batch = dict(batch, rewards=2.0 * batch["rewards"] - 1.0, scale="pm1")
    if name == "dapo":  # known src bug, see batch_strategies.has_inexact_equal_group
        assume(not has_inexact_equal_group(batch) and not has_inexact_equal_group(pm1_batch))
        # 2r - 1 can round distinct tiny rewards to one value (0 and 5e-191 both give -1): keep then differs
        assume(_equal_groups(batch) == _equal_groups(pm1_batch))
    binary = run(name, batch)
    pm1 = run(name, pm1_batch)
    np.testing.assert_allclose(pm1.baseline, 2.0 * binary.baseline - 1.0, **TOL)
    if binary.weight is not None:
        np.testing.assert_allclose(pm1.weight, binary.weight, **TOL)
    np.testing.assert_array_equal(pm1.keep, binary.keep)
    if name in ("mean", "dr_grpo", "rloo") or get_estimator(name).uses_prior:  # unscaled: A doubles
        np.testing.assert_allclose(pm1.advantage, 2.0 * binary.advantage, **TOL)


@pytest.mark.parametrize("name", ALL)
def test_float32_and_int_inputs_give_the_float64_result(name):
    rewards = [1, 0, 1, 1, 0, 0, 1]
    group = [5, 5, 5, 2, 2, 9, 9]
    batch = {"group": group, "prior": np.full(7, 0.25), "prior_var": np.full(7, 0.01), "scale": "binary"}
    want = run(name, dict(batch, rewards=np.array(rewards, dtype=np.float64)))
    for dtype in (np.float32, np.int64, np.bool_):
        assert_same(run(name, dict(batch, rewards=np.array(rewards, dtype=dtype))), want, {"rtol": 0, "atol": 0})


def test_alias_v05_is_the_default_estimator():
    from v05.baselines import DEFAULT, resolve

    assert resolve("v05") == DEFAULT in ALL
    batch = {"rewards": np.array([1.0, 0, 1, 1, 0, 0]), "group": list("aaabbb"), "prior": np.full(6, 0.4),
             "prior_var": None, "scale": "binary"}
    assert_same(run("v05", batch), run(DEFAULT, batch), {"rtol": 0, "atol": 0})


# -- the prior's weight at its ends -------------------------------------------------------------------


@PROPS
@given(batch=valid_batches)
def test_eb_with_rho_one_is_exactly_the_mean(batch):
    got, want = run("v05_eb_beta", batch, rho=1.0), run("mean", batch)
    np.testing.assert_array_equal(got.baseline, want.baseline)
    np.testing.assert_array_equal(got.advantage, want.advantage)
    np.testing.assert_array_equal(got.weight, 1.0)


@PROPS
@given(batch=valid_batches)
def test_eb_loo_with_rho_one_is_exactly_rloo(batch):
    got, want = run("v05_eb_beta_loo", batch, rho=1.0), run("rloo", batch)
    np.testing.assert_array_equal(got.baseline, want.baseline)
    np.testing.assert_array_equal(got.advantage, want.advantage)


@PROPS
@given(batch=valid_batches)
def test_eb_with_infinite_tau2_is_exactly_the_mean(batch):
    got, want = run("v05_eb", batch, tau2=float("inf")), run("mean", batch)
    np.testing.assert_array_equal(got.baseline, want.baseline)
    np.testing.assert_array_equal(got.advantage, want.advantage)
    np.testing.assert_array_equal(got.weight, 1.0)


@PROPS
@given(batch=valid_batches)
def test_eb_loo_with_infinite_tau2_is_exactly_rloo(batch):
    got, want = run("v05_eb_loo", batch, tau2=float("inf")), run("rloo", batch)
    np.testing.assert_array_equal(got.baseline, want.baseline)
    np.testing.assert_array_equal(got.advantage, want.advantage)


@pytest.mark.parametrize("name", ["v05_eb", "v05_eb_loo"])
def test_eb_with_zero_tau2_is_exactly_the_prior(name):
    rewards, group, prior = [1.0, 0, 1, 1, 0, 0], list("aaabbb"), [0.3] * 3 + [0.9] * 3
    got = compute(name, rewards, group, prior=prior, tau2=0.0)
    np.testing.assert_array_equal(got.baseline, prior)
    np.testing.assert_array_equal(got.weight, 0.0)


@pytest.mark.parametrize("name", ["v05_eb", "v05_eb_loo"])
@pytest.mark.parametrize("tau2", [-0.1, float("nan")])
def test_eb_negative_or_nan_tau2_is_rejected(name, tau2):
    with pytest.raises(ValueError, match=rf"^{name}: tau2 == {tau2!r}, must be a number >= 0 or inf \(tau2 is"):
        compute(name, R4, G4, prior=[0.5] * 4, tau2=tau2)


@pytest.mark.parametrize("name", ["v05_eb_beta", "v05_eb_beta_loo"])
def test_eb_with_rho_zero_is_exactly_the_prior(name):
    rewards, group, prior = [1.0, 0, 1, 1, 0, 0], list("aaabbb"), [0.3] * 3 + [0.9] * 3
    got = compute(name, rewards, group, prior=prior, rho=0.0)
    np.testing.assert_array_equal(got.baseline, prior)
    np.testing.assert_array_equal(got.weight, 0.0)


PRIOR_IS_MEAN = [  # (rewards of one group, its prior = the float mean of those rewards)
    [1.0, 1.0, 0.0], [1.0, 0.0, 0.0], [1.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0], [1.0, 0.0, 0.0, 0.0, 0.0],
    [0.3, 0.9, 0.6], [1.0, 0.0],
]


@pytest.mark.parametrize("name, prior_var, options", [
    ("v05_paper", None, {}), ("v05_bernoulli", None, {}), ("v05_eb_beta", None, {}), ("prior", None, {}),
    ("v05_eb_beta", None, {"rho": 0.3}), ("v05_prior_var", 0.0, {}),
    ("v05_prior_var", 0.05, {}),
])
@pytest.mark.parametrize("scale", ["binary", "pm1"])
def test_a_prior_equal_to_the_group_mean_is_returned_exactly(name, prior_var, options, scale):
    for rewards in PRIOR_IS_MEAN:
        k = len(rewards)
        v = sum(rewards) / k
        r = np.array(rewards) if scale == "binary" else 2.0 * np.array(rewards) - 1.0
        got = compute(name, r, [0] * k, prior=[v] * k, prior_var=None if prior_var is None else [prior_var] * k,
                      scale=scale, **options)
        want = v if scale == "binary" else -1.0 + 2.0 * v
        np.testing.assert_array_equal(got.baseline, want, err_msg=f"{rewards}")


@pytest.mark.parametrize("name", [n for n in FUSED if n.endswith("_loo") and not n.startswith("v05_eb_reg")])
@pytest.mark.parametrize("value", [0.0, 1.0, 0.5])
def test_loo_prior_equal_to_the_others_mean_is_returned_exactly(name, value):
    # all-equal groups: the mean of the others is the common value, and the prior is set to it
    rewards = [value] * 4 + [1.0, 0.0, 1.0]
    group = ["a"] * 4 + ["b"] * 3
    prior = [value] * 4 + [0.5] * 3
    got = compute(name, rewards, group, prior=prior, prior_var=[0.05] * 7)
    np.testing.assert_array_equal(got.baseline[:4], value)


# -- verl / TRL numeric pins ----------------------------------------------------------------------------

PIN_REWARDS = [1.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0, 0.0]
PIN_GROUP = ["a"] * 4 + ["b"] * 4
# a: mean 1/2, std (ddof=1) sqrt(1/3); b: mean 3/4, std sqrt((3 * 1/16 + 9/16) / 3) = 1/2.
# A = (r - mean) / (std + eps): a: +-0.5 / (sqrt(1/3) + eps); b: 0.25 / (0.5 + eps), -0.75 / (0.5 + eps).


@pytest.mark.parametrize("eps, a_pos, b_pos, b_neg", [
    (1e-6, 0.8660239037870368, 0.499999000002, -1.499997000006),          # verl core_algos (1e-6)
    (1e-4, 0.8658754297607016, 0.4999000199960008, -1.4997000599880024),  # TRL grpo_trainer (1e-4)
])
def test_grpo_eps_pins_verl_and_trl(eps, a_pos, b_pos, b_neg):
    out = compute("grpo", PIN_REWARDS, PIN_GROUP, eps=eps)
    want = [a_pos, -a_pos, -a_pos, a_pos, b_pos, b_pos, b_pos, b_neg]
    np.testing.assert_allclose(out.advantage, want, rtol=1e-12, atol=0)
    np.testing.assert_array_equal(out.baseline, [0.5] * 4 + [0.75] * 4)


def test_grpo_default_eps_is_verls():
    np.testing.assert_array_equal(compute("grpo", PIN_REWARDS, PIN_GROUP).advantage,
                                  compute("grpo", PIN_REWARDS, PIN_GROUP, eps=1e-6).advantage)


def test_rloo_by_hand():
    out = compute("rloo", [1.0, 0.0, 1.0, 0.7, 0.2], [0, 0, 0, 1, 1])
    np.testing.assert_allclose(out.baseline, [0.5, 1.0, 0.5, 0.2, 0.7], rtol=1e-15, atol=1e-15)
    np.testing.assert_allclose(out.advantage, [0.5, -1.0, 0.5, 0.5, -0.5], rtol=1e-15, atol=1e-15)


# -- errors: clear, naming the field and the row / group -----------------------------------------------


def call(name, rewards, group, *, prior="auto", prior_var="auto", **kw):
    n = len(rewards)
    entry = get_estimator(name)
    if prior == "auto":
        prior = [0.5] * n if entry.uses_prior else None
    if prior_var == "auto":
        prior_var = [0.01] * n if entry.needs_prior_var else None
    return compute(name, rewards, group, prior=prior, prior_var=prior_var, **kw)


R4, G4 = [1.0, 0.0, 0.0, 1.0], ["a", "b", "a", "b"]


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("bad, shown", [(np.nan, "nan"), (np.inf, "inf"), (-np.inf, "inf"), (1.5, "1.5"),
                                        (-0.25, "-0.25")])
def test_bad_rewards_are_rejected_naming_row_and_group(name, bad, shown):
    rewards = [1.0, bad, 0.0, 1.0]
    with pytest.raises(ValueError, match=rf"rewards\[1\] = .*{shown}.*group .*'b'.*\[0, 1\]"):
        call(name, rewards, G4)


@pytest.mark.parametrize("name", ALL)
def test_rewards_outside_a_declared_scale_are_rejected(name):
    with pytest.raises(ValueError, match=r"rewards\[2\] = .*group .*'a'.*\[-1, 1\]"):
        call(name, [1.0, -1.0, 2.0, 1.0], G4, scale="pm1")
    with pytest.raises(ValueError, match=r"rewards\[0\].*\[-2, 3\]"):
        call(name, [3.5, -1.0, 2.0, 1.0], G4, scale=(-2.0, 3.0))


@pytest.mark.parametrize("name", ALL)
def test_shape_and_length_errors(name):
    with pytest.raises(ValueError, match=r"inconsistent lengths.*'rewards': 4.*'group': 3"):
        call(name, R4, ["a", "a", "b"])
    with pytest.raises(ValueError, match="rewards is empty"):
        call(name, [], [])
    with pytest.raises(ValueError, match=r"rewards must be 1-D; got shape \(2, 2\)"):
        call(name, [[1.0, 0.0], [0.0, 1.0]], G4)
    with pytest.raises(ValueError, match=r"group must be 1-D"):
        call(name, R4, [["a", "b"], ["a", "b"]])


@pytest.mark.parametrize("name", ALL)
def test_unknown_option_is_a_type_error_naming_the_valid_ones(name):
    valid = list(get_estimator(name).options)
    with pytest.raises(TypeError, match=rf"{name} got unknown option\(s\) \['epsilon'\]; its options: "
                                        rf"{re_list(valid)}"):
        call(name, R4, G4, epsilon=1e-6)


def re_list(items):
    import re

    return re.escape(str(items))


def test_unknown_estimator_lists_the_known_names():
    with pytest.raises(ValueError, match=r"unknown estimator 'rlo'; known: dapo, dr_grpo, eb_batch, grpo, .*rloo.*v05,"):
        compute("rlo", R4, G4)


@pytest.mark.parametrize("name", FUSED)
def test_missing_prior_is_an_error_naming_it(name):
    with pytest.raises(ValueError, match=rf"{name} fuses a prior: pass prior="):
        call(name, R4, G4, prior=None)


@pytest.mark.parametrize("name", FUSED)
@pytest.mark.parametrize("bad", [-0.1, 1.2, np.nan, np.inf])
def test_prior_outside_unit_interval_is_rejected_naming_row_and_group(name, bad):
    with pytest.raises(ValueError, match=r"prior\[3\] = .*group .*'b'.*prior must be finite numbers in \[0, 1\]"):
        call(name, R4, G4, prior=[0.5, 0.5, 0.5, bad])


@pytest.mark.parametrize("name", FUSED)
def test_prior_varying_within_a_group_is_rejected(name):
    with pytest.raises(ValueError, match=r"prior\[2\] = .*0\.7.*group .*'a'.*constant within a group"):
        call(name, R4, G4, prior=[0.5, 0.4, 0.7, 0.4])


@pytest.mark.parametrize("name", NEEDS_VAR)
def test_prior_var_errors(name):
    with pytest.raises(ValueError, match=rf"{name} weights the prior by its variance: pass prior_var="):
        call(name, R4, G4, prior_var=None)
    for bad in (-1e-3, np.nan, np.inf):
        with pytest.raises(ValueError, match=r"prior_var\[1\] = .*group .*'b'"):
            call(name, R4, G4, prior_var=[0.01, bad, 0.01, 0.01])
    with pytest.raises(ValueError, match=r"prior_var\[3\].*group .*'b'.*constant within a group"):
        call(name, R4, G4, prior_var=[0.01, 0.01, 0.01, 0.02])


@pytest.mark.parametrize("name", ALL)
def test_bad_scale_is_rejected(name):
    with pytest.raises(ValueError, match=r"lo < hi"):
        call(name, R4, G4, scale=(1.0, 0.0))
    with pytest.raises(ValueError, match=r"scale='percent'"):
        call(name, R4, G4, scale="percent")


@pytest.mark.parametrize("option, value, error, match", [
    ("std_scale", "groups", ValueError, r"grpo: std_scale='groups'; expected one of \('group', 'batch', 'none'\)"),
    ("std_scale", ["group"], TypeError, r"grpo: std_scale must be one of .*; got list \['group'\]"),
    ("eps", 0.0, ValueError, r"grpo: eps == 0.0, must be a finite number > 0 \(it keeps all-equal groups"),
    ("eps", "1e-4", TypeError, r"grpo: eps must be a number; got str '1e-4'"),
    ("ddof", 1.5, TypeError, r"grpo: ddof must be an int; got float 1.5"),
    ("ddof", -1, ValueError, r"grpo: ddof == -1, must be >= 0"),
])
def test_grpo_bad_option_value(option, value, error, match):
    with pytest.raises(error, match=match):
        compute("grpo", R4, G4, **{option: value})


@pytest.mark.parametrize("name", ["v05_eb_beta", "v05_eb_beta_loo"])
@pytest.mark.parametrize("rho", [-0.1, 1.5, float("nan")])
def test_eb_rho_outside_unit_interval_is_rejected(name, rho):
    with pytest.raises(ValueError, match=rf"^{name}: rho == {rho!r}, must be a finite number >= 0 and <= 1"):
        compute(name, R4, G4, prior=[0.5] * 4, rho=rho)


def test_error_message_has_the_style_guide_shape():
    with pytest.raises(ValueError, match=r"^rewards\[1\] = nan \(group 'b'\): rewards must be finite numbers"):
        compute("mean", [1.0, np.nan, 0.0, 1.0], G4)


# -- v05_eb_mix: exact reductions and the per-prompt test ------------------------------------------------

variances = st.floats(0.0, 1.0, allow_nan=False)


@PROPS
@given(batch=valid_batches, tau2=variances)
def test_mix_with_pi_zero_is_exactly_v05_eb(batch, tau2):
    """One component left: v05_eb's weight, with its moment fit or the same given tau2."""
    assert_same(run("v05_eb_mix", batch, pi=0.0), run("v05_eb", batch), {"rtol": 0, "atol": 0})
    assert_same(run("v05_eb_mix", batch, pi=0.0, tau2=tau2), run("v05_eb", batch, tau2=tau2), {"rtol": 0, "atol": 0})


@PROPS
@given(batch=valid_batches, tau2=variances)
def test_mix_with_pi_one_is_v05_eb_with_the_large_variance(batch, tau2):
    assert_same(run("v05_eb_mix", batch, pi=1.0), run("v05_eb", batch), {"rtol": 0, "atol": 0})
    assert_same(run("v05_eb_mix", batch, pi=1.0, tau2_big=tau2), run("v05_eb", batch, tau2=tau2),
                {"rtol": 0, "atol": 0})


@PROPS
@given(batch=valid_batches, pi=st.floats(0.0, 1.0), tau2=variances)
def test_mix_with_equal_variances_is_v05_eb(batch, pi, tau2):
    """Two components with one variance are one: the responsibility no longer matters."""
    assert_same(run("v05_eb_mix", batch, pi=pi, tau2=tau2, tau2_big=tau2), run("v05_eb", batch, tau2=tau2))


@PROPS
@given(batch=valid_batches)
def test_mix_with_infinite_tau2_is_exactly_the_mean(batch):
    got, want = run("v05_eb_mix", batch, tau2=float("inf")), run("mean", batch)
    np.testing.assert_array_equal(got.baseline, want.baseline)
    np.testing.assert_array_equal(got.advantage, want.advantage)
    np.testing.assert_array_equal(got.weight, 1.0)


@PROPS
@given(batch=batches(min_groups=2, max_groups=8, min_size=4, max_size=4, scales=("binary",)),
       options=st.sampled_from([{}, {"pi": 0.3}, {"pi": 0.9}, {"tau2": 0.01}, {"tau2_big": 0.5}, {"tau2_big": 0.002}]))
def test_mix_weight_grows_with_the_deviation(batch, options):
    """Same k: a prompt whose mean is further from its prior is more likely a wrong prior, so it gets at least
    the weight of any closer one (the fitted large-error variance is the larger)."""
    out = run("v05_eb_mix", batch, **options)
    mean = run("mean", batch).baseline
    d2 = (mean - batch["prior"]) ** 2
    order = np.lexsort((out.weight, d2))
    assert (np.diff(out.weight[order]) >= -1e-12).all()


def _one_wrong_prior(wrong_prior: float) -> tuple[list, list, list]:
    """30 prompts x 8 rollouts with priors within 0.03 of their means, and one all-correct prompt."""
    rewards, group, prior = [], [], []
    for j in range(30):
        m = j % 9
        rewards += [1.0] * m + [0.0] * (8 - m)
        group += [f"p{j}"] * 8
        prior += [min(max(m / 8 + 0.03 * (-1) ** j, 0.0), 1.0)] * 8
    return rewards + [1.0] * 8, group + ["wrong"] * 8, prior + [wrong_prior] * 8


def test_mix_rejects_one_hallucinated_prior_among_good_ones():
    """The per-prompt test inside empirical Bayes: v05_eb gives every prompt one weight (0.35 here), so the
    wrong prior pulls its baseline to 0.38; the mixture trusts the good priors (weight < 0.05) and rejects the
    wrong one (weight > 0.95)."""
    rewards, group, prior = _one_wrong_prior(0.05)
    mix, eb = compute("v05_eb_mix", rewards, group, prior=prior), compute("v05_eb", rewards, group, prior=prior)
    assert np.ptp(eb.weight) == 0 and eb.baseline[-1] < 0.4
    assert (mix.weight[:-8] < 0.05).all() and (mix.weight[-8:] > 0.95).all()
    assert mix.baseline[-1] > 0.95
    agree = compute("v05_eb_mix", rewards, group, prior=prior[:-8] + [1.0] * 8)  # the same prompt, a right prior
    assert agree.weight[-1] < 0.05


@settings(max_examples=60, deadline=None)
@given(d2=st.lists(st.floats(0.0, 1.0), min_size=2, max_size=30), data=st.data(),
       fixed=st.sampled_from([{}, {"pi": 0.9}, {"pi": 0.05}, {"tau2_big": 0.002}, {"tau2_small": 0.3},
                              {"pi": 0.5, "tau2_big": 0.01}]))
def test_mixture_fit_keeps_the_large_error_component_the_larger(d2, data, fixed):
    """Whatever the data and the fixed parameters: tau2_small <= tau2_big, pi in [0, 1], fixed values kept."""
    from v05.baselines.shrinkage import fit_mixture

    s2 = np.array(data.draw(st.lists(st.floats(1e-3, 0.5), min_size=len(d2), max_size=len(d2))))
    kw = {"pi": None, "tau2_small": None, "tau2_big": None, **fixed}
    init_big = kw["tau2_big"] if kw["tau2_big"] is not None else 0.2
    init_small = kw["tau2_small"] if kw["tau2_small"] is not None else min(0.01, init_big)
    p, small, big = fit_mixture(np.array(d2), s2, init_small=init_small, init_big=max(init_big, init_small), **kw)
    assert 0.0 <= p <= 1.0 and 0.0 <= small <= big < np.inf
    for name, value in fixed.items():
        assert {"pi": p, "tau2_small": small, "tau2_big": big}[name] == value
