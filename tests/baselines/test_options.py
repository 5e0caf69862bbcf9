"""Declared option checks (found without running an estimator) and inputs of the wrong type, tried as a new user
would: options as strings or dicts, scales that do not parse, group ids of mixed types or NaN."""

from __future__ import annotations

import numpy as np
import pytest

from v05._validation import Choice
from v05.baselines import check_options, compute, get_estimator, list_estimators
from v05.baselines.registry import KernelOut, register

ALL = list_estimators()
R4, G4 = [1.0, 0.0, 0.0, 1.0], ["a", "b", "a", "b"]


def call(name, rewards=R4, group=G4, **kw):
    entry = get_estimator(name)
    n = len(rewards)
    return compute(name, rewards, group, prior=[0.5] * n if entry.uses_prior else None,
                   prior_var=[0.01] * n if entry.needs_prior_var else None, **kw)


@pytest.mark.parametrize("name", ALL)
def test_every_option_is_declared_with_its_default(name):
    entry = get_estimator(name)
    assert list(entry.options) == list(entry.defaults)
    for option, default in entry.defaults.items():
        assert entry.options[option].check(default, option) == default  # the default passes its own check


@pytest.mark.parametrize("name", [n for n in ALL if get_estimator(n).options])
@pytest.mark.parametrize("bad", ["abc", {"value": 1}])
def test_an_option_given_as_a_string_or_dict_is_an_error_naming_it(name, bad):
    """A clean TypeError (a ValueError for a name that is not a choice), never a raw numpy error."""
    for option, spec in get_estimator(name).options.items():
        error = ValueError if isinstance(spec, Choice) and isinstance(bad, str) else TypeError
        with pytest.raises(error, match=rf"^{name}: {option}( must be |=)"):
            check_options(name, {option: bad})
        with pytest.raises(error, match=rf"^{name}: {option}( must be |=)"):
            call(name, **{option: bad})


def test_check_options_finds_config_errors_without_running():
    assert check_options("grpo", {"std_scale": "batch", "eps": 1e-4, "ddof": 0}) == {
        "std_scale": "batch", "eps": 1e-4, "ddof": 0}
    assert check_options("v05", {"tau2": 0}) == {"tau2": 0.0} and check_options("v05", None) == {}
    assert check_options("v05", {"tau2": float("inf")}) == {"tau2": float("inf")}
    with pytest.raises(TypeError, match=r"v05: tau2 must be a number; got str 'abc'"):
        check_options("v05", {"tau2": "abc"})
    with pytest.raises(TypeError, match=r"v05 got unknown option\(s\) \['rho'\]; its options: \['tau2'\]"):
        check_options("v05", {"rho": 0.5})
    with pytest.raises(TypeError, match=r"grpo options must be a dict of option name -> value; got str"):
        check_options("grpo", "std_scale=batch")
    with pytest.raises(ValueError, match=r"unknown estimator 'grpoo'; known: "):
        check_options("grpoo", {})
    with pytest.raises(TypeError, match=r"reinforce_pp: group_baseline must be True or False; got str 'false'"):
        check_options("reinforce_pp", {"group_baseline": "false"})
    with pytest.raises(ValueError, match=r"dapo: eps == inf, must be a finite number > 0"):
        check_options("dapo", {"eps": float("inf")})


def test_checked_options_give_the_same_numbers_as_before():
    """An int where a float is declared is accepted and gives the float's result exactly."""
    a = compute("v05_eb", R4, G4, prior=[0.3] * 4, tau2=1)
    b = compute("v05_eb", R4, G4, prior=[0.3] * 4, tau2=1.0)
    np.testing.assert_array_equal(a.baseline, b.baseline)


def test_a_kernel_whose_options_are_not_declared_fails_at_registration():
    with pytest.raises(TypeError, match=r"estimator 'x_test': the kernel's options \['eps'\] differ from the "
                                        r"declared checks \[\]"):
        @register("x_test")
        def x_test(batch, *, eps: float = 1e-6) -> KernelOut:  # pragma: no cover - never registered
            return KernelOut(batch.mean[batch.inv])
    assert "x_test" not in list_estimators()


@pytest.mark.parametrize("scale, error, match", [
    ("0,1,2", ValueError, r"scale='0,1,2'; expected 'binary', 'pm1', \(lo, hi\) or 'lo,hi' with numbers lo < hi"),
    ("a,b", ValueError, r"scale='a,b'; expected"),
    ({"lo": 0}, TypeError, r"scale must be 'binary', 'pm1', \(lo, hi\) or 'lo,hi'; got dict"),
    ((0, "x"), TypeError, r"scale hi must be a number; got str 'x'"),
    ((0.0, float("inf")), ValueError, r"scale hi == inf, must be a finite number"),
])
def test_scale_that_does_not_parse_is_named(scale, error, match):
    with pytest.raises(error, match=match):
        compute("mean", R4, G4, scale=scale)


def test_scale_as_text_pair_or_array_works():
    for scale in ("0,10", (0, 10), np.array([0.0, 10.0])):
        out = compute("mean", [10.0, 0.0], ["a", "a"], scale=scale)
        np.testing.assert_array_equal(out.baseline, [5.0, 5.0])


@pytest.mark.parametrize("group, error, match", [
    ([1, "1", 2, 2], TypeError, r"group ids mix int and str \(group\[0\] = 1, group\[1\] = '1'\); use one type"),
    (np.array([1, "1", 2, 2], dtype=object), TypeError, r"group ids mix int and str"),
    ([1.0, 2, 2.0, 1.0], TypeError, r"group ids mix float and int \(group\[0\] = 1.0, group\[1\] = 2\)"),
    (["a", None, "a", "b"], TypeError, r"group\[1\] = None \(NoneType\): group ids must be ints, strings or finite"),
    ([True, False, True, False], TypeError, r"group ids must be ints or strings; got dtype bool"),
    (["a", True, "a", "b"], TypeError, r"group\[1\] = True \(bool\)"),
    (np.array([True, False, True, False]), TypeError, r"group ids must be ints or strings; got dtype bool"),
    ([0.0, np.nan, 0.0, np.nan], ValueError, r"group\[1\] = nan: group ids must not be NaN"),
    (np.array([0.0, 1.0, np.nan, 1.0]), ValueError, r"group\[2\] = nan: group ids must not be NaN"),
])
def test_group_ids_that_would_merge_silently_are_rejected(group, error, match):
    with pytest.raises(error, match=match):
        compute("mean", R4, group)


def test_group_ids_of_one_type_still_work():
    for group in (["a", "b", "a", "b"], [3, 7, 3, 7], np.array([3, 7, 3, 7], dtype=object), [0.5, 1.5, 0.5, 1.5],
                  np.array(["a", "b", "a", "b"]), [np.int64(3), 7, 3, 7], [b"a", b"b", b"a", b"b"]):
        np.testing.assert_array_equal(compute("mean", R4, group).baseline, [0.5, 0.5, 0.5, 0.5])


@pytest.mark.parametrize("field, value, match", [
    ("prior", ["0.5"] * 4, r"prior must be an array of float64 numbers; got list \['0.5'"),
    ("prior", "abc", r"prior must be an array of float64 numbers; got str 'abc'"),
    ("prior", [0.5, None, 0.5, 0.5], r"prior must be an array of float64 numbers; got list \[0.5, None"),
    ("prior_var", [True] * 4, r"prior_var must be an array of float64 numbers"),
])
def test_priors_of_the_wrong_type_are_type_errors(field, value, match):
    kw = {"prior": [0.5] * 4, "prior_var": [0.01] * 4, field: value}
    with pytest.raises(TypeError, match=match):
        compute("v05_prior_var", R4, G4, **kw)


def test_unknown_settings_are_named_as_written_in_every_config():
    """One wording for a misspelled setting, whichever config reads it (OSLA, the engine's sections, verl's)."""
    from v05._validation import check_known_keys

    check_known_keys({"k_max": 8}, ["k_init", "k_max"], "osla", prefix="osla.")  # known keys pass
    with pytest.raises(ValueError, match=r"unknown setting\(s\) \['osla.k_mx', 'osla.kinit'\]; osla settings: "
                                         r"\['k_init', 'k_max'\]"):
        check_known_keys({"kinit": 4, "k_mx": 8, "k_max": 8}, ["k_init", "k_max"], "osla", prefix="osla.")
