"""Estimators that fuse a prior pass rate V with the empirical mean v of the rollouts: b = w v + (1 - w) V.

All arithmetic is on the unit scale (rewards mapped to [0, 1], V a pass rate). The estimators differ only
in the weight w on the empirical mean:

- ``v05_paper``: ``docs/method.md`` 3.2, positive-part James-Stein with the worst-case sampling variance,
  w = max(0, 1 - s2 / (v - V)^2), s2 = 1/(4k) on the unit scale (= the paper's 1/k for +-1 rewards).
- ``v05_bernoulli``: the same with a Bernoulli plug-in s2 = p(1-p)/k, p the Jeffreys-smoothed group mean
  (k v + 1/2) / (k + 1), so an all-equal group does not claim zero noise.
- ``v05_prior_var``: w = D2 / (D2 + s2) with the prior's squared error D2 = max(prior_var, (v-V)^2 - s2):
  the value model's own variance sets how far to trust it, and the deviation test still overrides an
  over-confident prior.
- ``v05_eb``: empirical Bayes over the batch (normal-normal). The prior's error mu - V has variance tau2
  across the batch's prompts and a k-rollout mean has variance sigma2 / k; the optimal weight is
  w = tau2 / (tau2 + sigma2 / k). Both are fitted by moments on the batch's groups with >= 2 rollouts:
  sigma2 = mean within-group sample variance, tau2 = max(0, mean of (v - V)^2 - s2_g / k) with s2_g each
  group's own unbiased sample variance. A useless prior gets a large tau2 (w -> 1), a perfect one tau2 = 0.
- ``v05_eb_beta``: empirical Bayes with a Beta-Binomial model: true pass rates scatter around the prior
  with variance rho V(1-V), w = k rho / (k rho + 1 - rho), rho by moments from
  E[(v - V)^2] = V(1-V) (rho + (1-rho)/k). Its error variance shrinks with V(1-V), so it under-uses
  priors that are confidently wrong near 0 or 1; ``v05_eb`` does not (`docs/results.md`, "Choosing the default").
- ``v05_eb_mix``: empirical Bayes with a per-prompt deviation test: the prior's error is a two-component
  scale mixture (1 - pi) N(0, tau2) + pi N(0, tau2_big), fitted on the batch by EM; each prompt's weight is
  its posterior mean's, (1 - r) w(tau2) + r w(tau2_big), with r the posterior probability that its prior is
  one of the wrong ones (``docs/method.md`` 3.7). ``pi=0`` gives ``v05_eb``. No leave-one-out twin: an exact
  one refits the EM once per group.

Each has a leave-one-out twin (``*_loo``): the baseline of rollout i uses the mean of the *other* k-1
rollouts (and, for the empirical-Bayes ones, the batch statistics fitted without the rollout's own group),
so it does not depend on r_i and the policy gradient stays unbiased (RLOO's property, which GRPO and the
paper form lack).

Edge-case rules: a group of one rollout is defined (its LOO baseline is the prior, w = 0); a prior of
exactly 0 or 1 is used as given for the baseline, and clipped to [0.02, 0.98] only where it sets a variance
V(1-V) (``v05_eb_beta``), so one confident prior cannot dominate the batch's moment equation. The
empirical-Bayes fits need one group with >= 2 rollouts, ``v05_eb_mix``'s two components two (else they raise,
naming the parameters to pass).
"""

from __future__ import annotations

import numpy as np

from v05._validation import Number
from v05.baselines.batch import Batch
from v05.baselines.registry import KernelOut, UndefinedError, register, register_alias
from v05.baselines.shrinkage import (
    bayes_weight,
    bernoulli_var,
    eb_moments,
    eb_weight,
    fit_mixture,
    fit_rho,
    fuse,
    mixture_weight,
    shrinkage_weight,
    worst_case_var,
)

RHO = Number(minimum=0.0, maximum=1.0, optional=True,
             hint="rho is the prior's relative spread: 0 trusts the prior, 1 ignores it, None fits it on the batch")
"""The check of ``rho`` (``v05_eb_beta``, ``v05_eb_beta_loo``)."""
TAU2 = Number(minimum=0.0, allow_inf=True, optional=True,
              hint="tau2 is the prior's error variance: 0 trusts the prior, inf ignores it, None fits it on the batch")
"""The check of ``tau2`` (``v05_eb``, ``v05_eb_loo``, ``v05_eb_mix``)."""
PI = Number(minimum=0.0, maximum=1.0, optional=True,
            hint="pi is the share of priors with the large error: 0 gives v05_eb, None fits it on the batch")
"""The check of ``pi`` (``v05_eb_mix``)."""
TAU2_BIG = Number(minimum=0.0, optional=True,
                  hint="tau2_big is the error variance of the wrong priors (>= tau2), None fits it on the batch")
"""The check of ``tau2_big`` (``v05_eb_mix``)."""
MIX_MIN_GROUPS = 2
"""Groups with >= 2 rollouts that ``v05_eb_mix`` needs to fit two error variances."""


def _fit_rho(mean: np.ndarray, k: np.ndarray, prior: np.ndarray) -> float:
    """:func:`~v05.baselines.shrinkage.fit_rho`, raising :class:`UndefinedError` where rho is not identifiable."""
    rho = fit_rho(mean, k, prior)
    if rho is None:
        raise UndefinedError(
            "v05_eb_beta learns how far to trust the prior from groups with >= 2 rollouts, and this batch has "
            "none; pass rho= (0 trusts the prior fully, 1 ignores it) or use v05_paper"
        )
    return rho


def _loo_means(batch: Batch) -> tuple[np.ndarray, np.ndarray]:
    """Per-rollout mean of the other rollouts of its group and their count k-1 (mean := prior when k = 1)."""
    k_other = batch.counts[batch.inv] - 1
    prior = batch.prior[batch.inv]
    with np.errstate(divide="ignore", invalid="ignore"):
        v_other = np.where(k_other > 0, (batch.total[batch.inv] - batch.y) / k_other, prior)
    return v_other, k_other.astype(np.float64)


# -- estimators -------------------------------------------------------------------------------------------


@register("prior", uses_prior=True)
def prior_only(batch: Batch) -> KernelOut:
    """The prior alone: b = V for every rollout (a frozen critic with no test)."""
    return KernelOut(batch.prior[batch.inv], weight=np.zeros(len(batch.y)))


def _group_fusion(batch: Batch, w: np.ndarray) -> KernelOut:
    w = np.clip(w, 0.0, 1.0)
    return KernelOut(fuse(batch.mean, batch.prior, w)[batch.inv], weight=w[batch.inv])


def _rollout_fusion(batch: Batch, v_other: np.ndarray, w: np.ndarray) -> KernelOut:
    w = np.clip(w, 0.0, 1.0)
    return KernelOut(fuse(v_other, batch.prior[batch.inv], w), weight=w)


@register("v05_paper", uses_prior=True)
def v05_paper(batch: Batch) -> KernelOut:
    """V0.5 paper form: w = max(0, 1 - s2/(v - V)^2) with the worst-case s2 of the reward scale."""
    k = batch.counts.astype(np.float64)
    return _group_fusion(batch, shrinkage_weight((batch.mean - batch.prior) ** 2, worst_case_var(k)))


@register("v05_paper_loo", uses_prior=True)
def v05_paper_loo(batch: Batch) -> KernelOut:
    """Leave-one-out paper form: the fusion of V with the mean of the other k-1 rollouts."""
    v, k = _loo_means(batch)
    prior = batch.prior[batch.inv]
    return _rollout_fusion(batch, v, shrinkage_weight((v - prior) ** 2, worst_case_var(k)))


@register("v05_bernoulli", uses_prior=True)
def v05_bernoulli(batch: Batch) -> KernelOut:
    """Paper form with a Bernoulli plug-in variance p(1-p)/k instead of the worst case."""
    k = batch.counts.astype(np.float64)
    return _group_fusion(batch, shrinkage_weight((batch.mean - batch.prior) ** 2, bernoulli_var(batch.mean, k)))


@register("v05_bernoulli_loo", uses_prior=True)
def v05_bernoulli_loo(batch: Batch) -> KernelOut:
    """Leave-one-out ``v05_bernoulli``."""
    v, k = _loo_means(batch)
    prior = batch.prior[batch.inv]
    return _rollout_fusion(batch, v, shrinkage_weight((v - prior) ** 2, bernoulli_var(v, k)))


def _prior_var_weight(v, k, prior, prior_var):
    s2 = bernoulli_var(v, k)
    d2_prior = np.maximum(prior_var, (v - prior) ** 2 - s2)
    return np.where(k > 0, bayes_weight(d2_prior, s2), 0.0)


@register("v05_prior_var", uses_prior=True, needs_prior_var=True)
def v05_prior_var(batch: Batch) -> KernelOut:
    """Per-prompt prior variance: w = D2/(D2 + s2), D2 = max(prior_var, (v-V)^2 - s2)."""
    k = batch.counts.astype(np.float64)
    return _group_fusion(batch, _prior_var_weight(batch.mean, k, batch.prior, batch.prior_var))


@register("v05_prior_var_loo", uses_prior=True, needs_prior_var=True)
def v05_prior_var_loo(batch: Batch) -> KernelOut:
    """Leave-one-out ``v05_prior_var``."""
    v, k = _loo_means(batch)
    w = _prior_var_weight(v, k, batch.prior[batch.inv], batch.prior_var[batch.inv])
    return _rollout_fusion(batch, v, w)


@register("v05_eb_beta", uses_prior=True, options={"rho": RHO})
def v05_eb_beta(batch: Batch, *, rho: float | None = None) -> KernelOut:
    """Beta-Binomial empirical Bayes: w = k rho/(k rho + 1 - rho), rho fitted on the batch by moments.

    ``rho`` fixes the prior's relative spread instead of fitting it (1 = ignore the prior: the plain mean).
    Raises if rho is not given and no group has >= 2 rollouts (rho is then not identifiable).
    """
    rho = _fit_rho(batch.mean, batch.counts, batch.prior) if rho is None else rho
    return _group_fusion(batch, eb_weight(batch.counts.astype(np.float64), rho))


@register("v05_eb_beta_loo", uses_prior=True, options={"rho": RHO})
def v05_eb_beta_loo(batch: Batch, *, rho: float | None = None) -> KernelOut:
    """Leave-one-out ``v05_eb_beta``: mean of the other k-1 rollouts, rho fitted without the own group."""
    v, k = _loo_means(batch)
    if rho is None:
        num, den = eb_moments(batch.mean, batch.counts, batch.prior)
        den_other = den.sum() - den
        if (den_other <= 0).any():
            g = int(np.flatnonzero(den_other <= 0)[0])
            raise UndefinedError(
                f"v05_eb_beta_loo fits rho without each group's own rollouts, and without group {batch.label(g)!r} "
                "no group has >= 2 rollouts; pass rho= or use v05_eb_beta"
            )
        rho_g = np.clip((num.sum() - num) / den_other, 0.0, 1.0)
        rho = rho_g[batch.inv]
    return _rollout_fusion(batch, v, eb_weight(k, rho))


def eb_gauss_terms(batch: Batch, centre: np.ndarray | None = None,
                   inflate: float = 1.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-group moment terms of ``v05_eb``: (d2 - s2_g/k, s2_g, informative), zero where k < 2.

    s2_g is the group's unbiased sample variance (k/(k-1) v(1-v) for 0/1 rewards); summed over the
    informative groups and divided by their number, the first two estimate tau2 and sigma2. ``centre``
    replaces the prior (a fitted line, ``v05_eb_reg``), ``inflate`` multiplies d2 (its fitted parameters).
    """
    k = batch.counts
    centre = batch.prior if centre is None else centre
    informative = k >= 2
    with np.errstate(divide="ignore", invalid="ignore"):
        s2_g = np.where(informative, batch.sum_sq_dev / (k - 1), 0.0)
        d2 = np.where(informative, inflate * (batch.mean - centre) ** 2 - s2_g / k, 0.0)
    return d2, s2_g, informative.astype(np.float64)


def _tau2_sigma2(d2_sum, s2_sum, n_informative, tau2: float | None, where: str):
    """(tau2, sigma2) from the summed moment terms; a given tau2 wins. Without informative groups sigma2 is
    its worst case 1/4 when tau2 is given, and nothing can be fitted otherwise."""
    none = np.asarray(n_informative) <= 0
    if np.any(none) and tau2 is None:
        raise UndefinedError(
            f"v05_eb learns how far to trust the prior from groups with >= 2 rollouts, and {where} has none; "
            "pass tau2= (the prior's error variance: 0 trusts it fully, inf ignores it) or use v05_paper"
        )
    with np.errstate(divide="ignore", invalid="ignore"):
        sigma2 = np.where(none, 0.25, s2_sum / n_informative)
        fitted = np.maximum(0.0, d2_sum / n_informative)
    return (fitted if tau2 is None else np.full(np.shape(sigma2), float(tau2))), sigma2


@register("v05_eb", uses_prior=True, options={"tau2": TAU2})
def v05_eb(batch: Batch, *, tau2: float | None = None) -> KernelOut:
    """Batch empirical Bayes: w = tau2 / (tau2 + sigma2/k), tau2 and sigma2 fitted on the batch by moments.

    ``tau2`` fixes the prior's error variance (pass-rate units) instead of fitting it; ``inf`` returns the
    plain mean exactly. Raises if tau2 is not given and no group has >= 2 rollouts.
    """
    d2, s2_g, informative = eb_gauss_terms(batch)
    tau2, sigma2 = _tau2_sigma2(d2.sum(), s2_g.sum(), informative.sum(), tau2, "this batch")
    return _group_fusion(batch, bayes_weight(tau2, sigma2 / batch.counts))


def loo_tau2_sigma2(batch: Batch, tau2: float | None, name: str, instead: str,
                    centre: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Per-group (tau2, sigma2) of the leave-one-out EB forms: ``v05_eb``'s moments about ``centre`` (default:
    the prior) fitted without each group's own rollouts; raises if some group leaves no group of >= 2."""
    d2, s2_g, informative = eb_gauss_terms(batch, centre)
    n_other = informative.sum() - informative
    if tau2 is None and np.any(n_other <= 0):
        g = int(np.flatnonzero(n_other <= 0)[0])
        raise UndefinedError(
            f"{name} fits tau2 without each group's own rollouts, and without group {batch.label(g)!r} "
            f"no group has >= 2 rollouts; pass tau2= or use {instead}"
        )
    return _tau2_sigma2(d2.sum() - d2, s2_g.sum() - s2_g, n_other, tau2, "the batch")


@register("v05_eb_loo", uses_prior=True, options={"tau2": TAU2})
def v05_eb_loo(batch: Batch, *, tau2: float | None = None) -> KernelOut:
    """Leave-one-out ``v05_eb``: mean of the other k-1 rollouts, tau2 and sigma2 fitted without the own group."""
    v, k = _loo_means(batch)
    tau2, sigma2 = loo_tau2_sigma2(batch, tau2, "v05_eb_loo", "v05_eb")
    with np.errstate(divide="ignore", invalid="ignore"):
        s2 = sigma2[batch.inv] / k
    return _rollout_fusion(batch, v, np.where(k > 0, bayes_weight(tau2[batch.inv], s2), 0.0))


def _mix_params(batch: Batch, pi, tau2, tau2_big) -> tuple[float, float, float, float]:
    """(sigma2, pi, tau2_small, tau2_big) of ``v05_eb_mix``: given values kept, the others fitted on the
    batch's informative groups (one component: ``v05_eb``'s moments; two: EM started from them)."""
    if tau2 is not None and tau2_big is not None and tau2_big < tau2:
        raise ValueError(f"v05_eb_mix: tau2_big == {tau2_big!r} < tau2 == {tau2!r}; the wrong priors' error "
                         "variance tau2_big must be >= the good priors' tau2")
    d2_terms, s2_g, informative = eb_gauss_terms(batch)
    n_informative = int(informative.sum())
    one = {0.0: "tau2", 1.0: "tau2_big"}.get(pi)  # the only component, where pi leaves one
    needed = [one] if one else ["pi", "tau2", "tau2_big"]
    given = {"pi": pi, "tau2": tau2, "tau2_big": tau2_big}
    free = [name for name in needed if given[name] is None]
    minimum = 1 if one else MIX_MIN_GROUPS
    if free and n_informative < minimum:
        raise UndefinedError(
            f"v05_eb_mix fits {', '.join(free)} on groups with >= 2 rollouts and needs {minimum} such group(s); "
            f"this batch has {n_informative}. Pass {' and '.join(free)} (or pi=0: v05_eb) or use v05_paper"
        )
    sigma2 = float(s2_g.sum() / n_informative) if n_informative else 0.25
    moment = max(0.0, float(d2_terms.sum() / n_informative)) if n_informative else 0.0
    if sigma2 == 0.0:  # every informative group all-equal: the means count as exact (w = 1), as in v05_eb
        return sigma2, 0.0, 0.0, 0.0
    if one:
        fitted = moment if given[one] is None else given[one]
        return sigma2, pi, fitted, fitted
    if not free:
        return sigma2, pi, tau2, tau2_big
    fit = informative > 0
    k = batch.counts[fit].astype(np.float64)
    d2 = (batch.mean[fit] - batch.prior[fit]) ** 2
    init_small = moment / 4.0 if tau2 is None else tau2
    init_big = max(4.0 * moment, sigma2, init_small) if tau2_big is None else tau2_big
    init_small = min(init_small, init_big)
    pi, small, big = fit_mixture(d2, sigma2 / k, pi=pi, tau2_small=tau2, tau2_big=tau2_big,
                                 init_small=init_small, init_big=init_big)
    return sigma2, pi, small, big


@register("v05_eb_mix", uses_prior=True, options={"pi": PI, "tau2": TAU2, "tau2_big": TAU2_BIG})
def v05_eb_mix(batch: Batch, *, pi: float | None = None, tau2: float | None = None,
               tau2_big: float | None = None) -> KernelOut:
    """Empirical Bayes with a per-prompt deviation test: the prior's error is a two-component scale mixture.

    mu - V ~ (1 - pi) N(0, tau2) + pi N(0, tau2_big), fitted on the batch (EM); each prompt's weight is its
    posterior mean's, (1 - r) w(tau2) + r w(tau2_big), r the posterior probability that its prior is one of
    the wrong ones. ``pi=0`` (or 1) leaves one component: exactly ``v05_eb`` (with ``tau2``, or ``tau2_big``);
    ``tau2=inf`` returns the plain mean exactly. Raises if a parameter must be fitted and fewer than 2
    groups (1 with one component) have >= 2 rollouts.
    """
    if tau2 is not None and np.isinf(tau2):
        return _group_fusion(batch, np.ones(batch.n_groups))
    sigma2, pi, small, big = _mix_params(batch, pi, tau2, tau2_big)
    if sigma2 == 0.0:
        return _group_fusion(batch, np.ones(batch.n_groups))
    s2 = sigma2 / batch.counts
    return _group_fusion(batch, mixture_weight((batch.mean - batch.prior) ** 2, s2, pi, small, big))


DEFAULT = "v05_eb"
"""The default V0.5 estimator (``compute("v05", ...)``); `docs/results.md`, "Choosing the default", has the figures."""

register_alias("v05", DEFAULT)
