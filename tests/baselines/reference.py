"""Slow, obvious twins of every registered baseline estimator: the fast version must match its twin.

Written from the formulas in the module docstrings of ``v05.baselines`` and ``docs/method.md`` sections 2 and 3,
not from the vectorised code: a dict of lists over groups, plain Python loops and ``math``. Only the
*estimator-defined* failures are raised here (``ValueError``: a singleton for ``rloo`` or a per-group
GRPO std, ``v05_eb_beta`` with no group of >= 2 rollouts, ...); input validation is tested separately.

Conventions shared with the fast code (so that the two agree to rounding):
- rewards are mapped to the unit scale u = (r - lo) / (hi - lo); a prior is a pass rate on that scale;
- a group mean is the plain left-to-right sum of the group's unit rewards, in rollout order, over k;
- a baseline b on the unit scale is mapped back as lo + (hi - lo) b, and the advantage is r - baseline
  (divided by a std for grpo / dapo / reinforce_pp, the std expressed in reward units).
"""

from __future__ import annotations

import math

EB_CLIP = 0.02  # v05_eb_beta: priors are clipped to [0.02, 0.98] where they set a variance V(1-V)
MIX_STEPS = 100  # v05_eb_mix: EM steps
MIX_INIT_PI = 0.1  # v05_eb_mix: EM's starting share of the large-error component
MIX_MIN_GROUPS = 2  # v05_eb_mix: groups with >= 2 rollouts needed to fit two components

REFERENCE_NAMES = (
    "dapo", "dr_grpo", "grpo", "mean", "prior", "reinforce_pp", "rloo",
    "v05_bernoulli", "v05_bernoulli_loo", "v05_eb", "v05_eb_loo", "v05_eb_beta", "v05_eb_beta_loo", "v05_eb_mix",
    "v05_paper", "v05_paper_loo", "v05_prior_var", "v05_prior_var_loo",
    "eb_batch", "js_loo", "v05_eb_reg", "v05_eb_reg_loo",
)
ALIASES = {"v05": "v05_eb"}
FUSED = tuple(n for n in REFERENCE_NAMES if n.startswith("v05_")) + ("prior",)


def parse_scale(scale):
    """(lo, hi) of a reward scale: 'binary' -> (0, 1), 'pm1' -> (-1, 1), (lo, hi) or 'lo,hi'."""
    if scale == "binary":
        return 0.0, 1.0
    if scale == "pm1":
        return -1.0, 1.0
    if isinstance(scale, str):
        lo, hi = scale.split(",")
        return float(lo), float(hi)
    lo, hi = scale
    return float(lo), float(hi)


def _mean(values):
    """Arithmetic mean; exactly the common value when all values are equal (the documented rule)."""
    return values[0] if len(set(values)) == 1 else sum(values) / len(values)


def _std(values, ddof):
    m = _mean(values)
    return math.sqrt(sum((x - m) ** 2 for x in values) / (len(values) - ddof))


def _fuse(w, v, prior):
    return w * v + (1.0 - w) * prior


# -- weights on the empirical mean (unit scale) -------------------------------------------------------


def paper_weight(v, k, prior):
    """METHOD 2.2: w = max(0, 1 - s2 / (v - V)^2), s2 = 1/(4k) (the paper's 1/k on the +-1 scale)."""
    if k == 0:
        return 0.0
    s2 = 1.0 / (4.0 * k)
    d2 = (v - prior) ** 2
    if d2 <= s2:
        return 0.0  # the deviation test keeps the prior
    return 1.0 - s2 / d2


def bernoulli_s2(v, k):
    """p(1-p)/k with the Jeffreys-smoothed p = (k v + 1/2) / (k + 1)."""
    p = (k * v + 0.5) / (k + 1.0)
    return p * (1.0 - p) / k


def bernoulli_weight(v, k, prior):
    if k == 0:
        return 0.0
    s2 = bernoulli_s2(v, k)
    d2 = (v - prior) ** 2
    if d2 <= s2:
        return 0.0
    return 1.0 - s2 / d2


def prior_var_weight(v, k, prior, prior_var):
    """w = D2 / (D2 + s2), D2 = max(prior_var, (v - V)^2 - s2), s2 Bernoulli."""
    if k == 0:
        return 0.0
    s2 = bernoulli_s2(v, k)
    d2 = max(prior_var, (v - prior) ** 2 - s2)
    return d2 / (d2 + s2)


def eb_weight(k, rho):
    """Beta-Binomial weight k rho / (k rho + 1 - rho); 0 with no rollouts."""
    if k == 0:
        return 0.0
    return k * rho / (k * rho + 1.0 - rho)


def fit_rho(groups, exclude=None):
    """Moment fit of rho over the groups with >= 2 rollouts (optionally leaving one group out).

    E[(v - V)^2] = a (rho + (1 - rho)/k), a = Vc (1 - Vc), Vc = V clipped to [0.02, 0.98], so
    rho = sum(d2 - a/k) / sum(a (1 - 1/k)), clipped to [0, 1]. Raises if no group is informative.
    """
    num = den = 0.0
    for gid, g in groups.items():
        if gid == exclude or g["k"] < 2:
            continue
        vc = min(max(g["prior"], EB_CLIP), 1.0 - EB_CLIP)
        a = vc * (1.0 - vc)
        num += (g["mean"] - g["prior"]) ** 2 - a / g["k"]
        den += a * (1.0 - 1.0 / g["k"])
    if den <= 0:
        raise ValueError("rho is not identifiable: no other group has >= 2 rollouts")
    return min(max(num / den, 0.0), 1.0)


def fit_tau2_sigma2(groups, exclude=None):
    """Normal-normal moments over the groups with >= 2 rollouts (optionally leaving one group out).

    s2_g = sum (y - v)^2 / (k - 1) (unbiased sample variance); sigma2 = mean s2_g;
    tau2 = max(0, mean((v - V)^2 - s2_g / k)). Raises if no group is informative.
    """
    d2s, s2s = [], []
    for gid, g in groups.items():
        if gid == exclude or g["k"] < 2:
            continue
        s2_g = sum((x - g["mean"]) ** 2 for x in g["y"]) / (g["k"] - 1)
        s2s.append(s2_g)
        d2s.append((g["mean"] - g["prior"]) ** 2 - s2_g / g["k"])
    if not s2s:  # tau2 cannot be fitted; sigma2 takes its worst case for a given tau2
        return None, 0.25
    return max(0.0, sum(d2s) / len(d2s)), sum(s2s) / len(s2s)


def gauss_weight(tau2, sigma2, k):
    """tau2 / (tau2 + sigma2 / k): 1 for an infinite tau2 (or 0/0), 0 with no rollouts."""
    if k == 0:
        return 0.0
    if math.isinf(tau2):
        return 1.0
    s2 = sigma2 / k
    return 1.0 if tau2 + s2 == 0 else tau2 / (tau2 + s2)


def mix_responsibility(d2, s2, pi, small, big):
    """P(large-error component | d): pi N(d; 0, big + s2) / ((1 - pi) N(d; 0, small + s2) + pi N(d; 0, big + s2))."""
    if pi <= 0.0:
        return 0.0
    if pi >= 1.0:
        return 1.0
    va, vb = small + s2, big + s2
    log_a = math.log(1.0 - pi) - 0.5 * (math.log(va) + d2 / va)
    log_b = math.log(pi) - 0.5 * (math.log(vb) + d2 / vb)
    x = log_a - log_b
    return 0.0 if x > 709.0 else 1.0 / (1.0 + math.exp(x))


def mix_weight(d2, s2, pi, small, big):
    """(1 - r) w_small + r w_big, w_c = tau2_c / (tau2_c + s2) (s2 > 0)."""
    r = mix_responsibility(d2, s2, pi, small, big)
    return (1.0 - r) * small / (small + s2) + r * big / (big + s2)


def fit_mix(d2s, s2s, pi, small, big, init_small, init_big):
    """MIX_STEPS EM steps over the groups (d2, s2); a given (non-None) parameter stays fixed.

    E-step: r_g and E[delta^2 | c] = w_c^2 d2 + w_c s2. M-step: pi = mean r, tau2_c = sum(weight E) / sum(weight)
    (kept when the weights sum to 0); if the fitted variances cross: swap (pi -> 1 - pi) when pi is fitted, pool
    when it is fixed, or take the fixed variance's value when one is fixed.
    """
    p = MIX_INIT_PI if pi is None else pi
    ts = init_small if small is None else small
    tb = init_big if big is None else big
    for _ in range(MIX_STEPS):
        a_s = b_s = a_b = b_b = 0.0
        rs = []
        for d2, s2 in zip(d2s, s2s):
            r = mix_responsibility(d2, s2, p, ts, tb)
            ws, wb = ts / (ts + s2), tb / (tb + s2)
            rs.append(r)
            a_s += 1.0 - r
            b_s += (1.0 - r) * (ws * ws * d2 + ws * s2)
            a_b += r
            b_b += r * (wb * wb * d2 + wb * s2)
        if pi is None:
            p = sum(rs) / len(rs)
        if small is None and a_s > 0:
            ts = b_s / a_s
        if big is None and a_b > 0:
            tb = b_b / a_b
        if tb < ts:
            if small is None and big is None:
                if pi is None:
                    ts, tb, p = tb, ts, 1.0 - p
                else:
                    ts = tb = (b_s + b_b) / (a_s + a_b)
            elif small is None:
                ts = tb
            else:
                tb = ts
    return p, ts, tb


def mix_weights(groups, pi, tau2, tau2_big):
    """Per group id, v05_eb_mix's weight (docs/method.md 3.7)."""
    if tau2 is not None and math.isinf(tau2):
        return {gid: 1.0 for gid in groups}
    if tau2 is not None and tau2_big is not None and tau2_big < tau2:
        raise ValueError("tau2_big must be >= tau2")
    moment, sigma2 = fit_tau2_sigma2(groups)
    informative = [g for g in groups.values() if g["k"] >= 2]
    one = {0.0: "tau2", 1.0: "tau2_big"}.get(pi)
    given = {"pi": pi, "tau2": tau2, "tau2_big": tau2_big}
    free = [n for n in ([one] if one else ["pi", "tau2", "tau2_big"]) if given[n] is None]
    if free and len(informative) < (1 if one else MIX_MIN_GROUPS):
        raise ValueError("v05_eb_mix cannot fit its parameters: too few groups with >= 2 rollouts")
    if sigma2 == 0.0:
        return {gid: 1.0 for gid in groups}
    if one:
        t = moment if given[one] is None else given[one]
        return {gid: t / (t + sigma2 / g["k"]) for gid, g in groups.items()}
    if free:
        moment = moment or 0.0
        init_small = moment / 4.0 if tau2 is None else tau2
        init_big = max(4.0 * moment, sigma2, init_small) if tau2_big is None else tau2_big
        init_small = min(init_small, init_big)
        d2s = [(g["mean"] - g["prior"]) ** 2 for g in informative]
        s2s = [sigma2 / g["k"] for g in informative]
        pi, tau2, tau2_big = fit_mix(d2s, s2s, pi, tau2, tau2_big, init_small, init_big)
    return {gid: mix_weight((g["mean"] - g["prior"]) ** 2, sigma2 / g["k"], pi, tau2, tau2_big)
            for gid, g in groups.items()}


def line_fit(groups, slope, intercept):
    """docs/method.md 3.11: weighted least squares of the group means on the prior, weight k; a given value is
    kept. Slope 0 (not fitted) when the priors spread by <= 1e-9, or all lie within 1e-9 of 0 through a given
    intercept.
    Returns (intercept, slope, number of fitted parameters)."""
    gs = list(groups.values())
    n = sum(g["k"] for g in gs)
    fitted = 0
    if slope is None:
        priors = [g["prior"] for g in gs]
        if intercept is None and max(priors) - min(priors) > 1e-9:
            xb = sum(g["k"] * g["prior"] for g in gs) / n
            yb = sum(g["k"] * g["mean"] for g in gs) / n
            sxy = sum(g["k"] * (g["prior"] - xb) * (g["mean"] - yb) for g in gs)
            sxx = sum(g["k"] * (g["prior"] - xb) ** 2 for g in gs)
            slope, fitted = sxy / sxx, fitted + 1
        elif intercept is not None and max(abs(x) for x in priors) > 1e-9:
            sxy = sum(g["k"] * g["prior"] * (g["mean"] - intercept) for g in gs)
            sxx = sum(g["k"] * g["prior"] ** 2 for g in gs)
            slope, fitted = sxy / sxx, fitted + 1
        else:
            slope = 0.0
    if intercept is None:
        intercept = sum(g["k"] * (g["mean"] - slope * g["prior"]) for g in gs) / n
        fitted += 1
    return intercept, slope, fitted


def centre_weights(groups, centre, fitted, tau2):
    """Per group id, the normal-normal weight on the mean against its centre: tau2 / (tau2 + sigma2/k) with
    tau2 = max(0, mean over informative groups of (n/(n-p)) (v - m)^2 - s2_g/k), sigma2 = mean s2_g; 1 for
    every group when the fitted line has as many parameters as there are groups."""
    n_groups = len(groups)
    if n_groups <= fitted:
        return {gid: 1.0 for gid in groups}
    inflate = n_groups / (n_groups - fitted)
    d2s, s2s = [], []
    for gid, g in groups.items():
        if g["k"] < 2:
            continue
        s2_g = sum((x - g["mean"]) ** 2 for x in g["y"]) / (g["k"] - 1)
        s2s.append(s2_g)
        d2s.append(inflate * (g["mean"] - centre[gid]) ** 2 - s2_g / g["k"])
    if tau2 is None:
        if not s2s:
            raise ValueError("tau2 is not identifiable: no group has >= 2 rollouts")
        tau2 = max(0.0, sum(d2s) / len(d2s))
    sigma2 = sum(s2s) / len(s2s) if s2s else 0.25
    return {gid: gauss_weight(tau2, sigma2, g["k"]) for gid, g in groups.items()}


def js_weights(groups):
    """docs/method.md 3.12, per group id: (weight on the RLOO mean, the other prompts' mean reward), from the
    other prompts only: noise2 = mean s2_h / k_h, spread2 = max(0, sample variance of their means - noise2)."""
    out = {}
    for gid in groups:
        rest = [g for h, g in groups.items() if h != gid]
        if len(rest) < 2:
            out[gid] = (1.0, 0.0)
            continue
        noise = sum(sum((x - g["mean"]) ** 2 for x in g["y"]) / (g["k"] - 1) / g["k"] for g in rest) / len(rest)
        mbar = sum(g["mean"] for g in rest) / len(rest)
        var = sum((g["mean"] - mbar) ** 2 for g in rest) / (len(rest) - 1)
        spread = max(0.0, var - noise)
        w = 1.0 if spread + noise == 0 else spread / (spread + noise)
        out[gid] = (w, sum(sum(g["y"]) for g in rest) / sum(g["k"] for g in rest))
    return out


def reg_loo_fit(groups, gid, slope, intercept, tau2):
    """docs/method.md 3.11, leave-one-out: (centre of group gid, tau2, sigma2, through) from the line and the
    moments fitted on the *other* groups (through: the line passes through every other group mean)."""
    rest = {h: g for h, g in groups.items() if h != gid}
    a, b, fitted = line_fit(rest, slope, intercept) if (slope is None or intercept is None) else (intercept, slope, 0)
    line = {h: min(max(a + b * g["prior"], 0.0), 1.0) for h, g in groups.items()}
    if fitted and len(rest) <= fitted:
        return line[gid], None, None, True
    inflate = len(rest) / (len(rest) - fitted) if fitted else 1.0
    d2s, s2s = [], []
    for h, g in rest.items():
        if g["k"] < 2:
            continue
        s2_g = sum((x - g["mean"]) ** 2 for x in g["y"]) / (g["k"] - 1)
        s2s.append(s2_g)
        d2s.append(inflate * (g["mean"] - line[h]) ** 2 - s2_g / g["k"])
    if tau2 is None:
        if not s2s:
            raise ValueError("tau2 is not identifiable: no other group has >= 2 rollouts")
        tau2 = max(0.0, sum(d2s) / len(d2s))
    return line[gid], tau2, (sum(s2s) / len(s2s) if s2s else 0.25), False


# -- the reference --------------------------------------------------------------------------------------


def reference(name, rewards, group, *, prior=None, prior_var=None, scale="binary", **options):
    """Return ``{"baseline", "advantage", "weight", "keep"}`` as lists (weight None if not a fusion)."""
    name = ALIASES.get(name, name)
    lo, hi = parse_scale(scale)
    width = hi - lo
    r = [float(x) for x in rewards]
    gids = [g.item() if hasattr(g, "item") else g for g in group]
    n = len(r)
    y = [(x - lo) / width for x in r] if (lo, hi) != (0.0, 1.0) else list(r)

    groups = {}  # id -> {"idx": [...], "y": [...], "k", "mean", "prior", "prior_var"}
    for i, gid in enumerate(gids):
        g = groups.setdefault(gid, {"idx": [], "y": []})
        g["idx"].append(i)
        g["y"].append(y[i])
        if prior is not None:
            g.setdefault("prior", float(prior[i]))
        if prior_var is not None:
            g.setdefault("prior_var", float(prior_var[i]))
    for g in groups.values():
        g["k"] = len(g["y"])
        g["mean"] = _mean(g["y"])

    base = [0.0] * n  # unit scale
    weight = [0.0] * n if name in FUSED else None
    keep = [True] * n
    divide = [1.0] * n  # advantage divisor, reward units
    zero_adv = [False] * n

    def others(g, i):
        rest = [g["y"][j] for j in range(g["k"]) if g["idx"][j] != i]
        return (_mean(rest) if rest else None), len(rest)

    if name in ("mean", "dr_grpo"):
        for g in groups.values():
            for i in g["idx"]:
                base[i] = g["mean"]

    elif name == "grpo":
        std_scale = options.get("std_scale", "group")
        eps = options.get("eps", 1e-6)
        ddof = options.get("ddof", 1)
        if std_scale == "batch" and n <= ddof:
            raise ValueError("batch std undefined")
        batch_std = width * _std(y, ddof) if std_scale == "batch" else None
        for gid, g in groups.items():
            if std_scale == "group":
                if g["k"] <= ddof:
                    raise ValueError(f"group {gid!r}: std undefined")
                std = width * _std(g["y"], ddof)
            for i in g["idx"]:
                base[i] = g["mean"]
                if std_scale == "group":
                    divide[i] = std + eps
                elif std_scale == "batch":
                    divide[i] = batch_std + eps

    elif name == "rloo":
        for gid, g in groups.items():
            if g["k"] < 2:
                raise ValueError(f"group {gid!r} has 1 rollout")
            for i in g["idx"]:
                base[i] = others(g, i)[0]

    elif name == "reinforce_pp":
        group_baseline = options.get("group_baseline", True)
        eps = options.get("eps", 1e-8)
        if n < 2:
            raise ValueError("needs >= 2 rollouts")
        batch_mean = _mean(y)
        b0 = [0.0] * n
        for g in groups.values():
            for i in g["idx"]:
                b0[i] = g["mean"] if group_baseline else batch_mean
        a = [width * (y[i] - b0[i]) for i in range(n)]  # reward units
        centre = _mean(a)
        std = math.sqrt(sum((x - centre) ** 2 for x in a) / (n - 1) + eps)
        for i in range(n):
            # whitened advantage (a - mean(a)) / std, reported as r - baseline over std
            base[i] = b0[i] + centre / width
            divide[i] = std

    elif name == "dapo":
        eps = options.get("eps", 1e-6)
        for g in groups.values():
            all_equal = len(set(g["y"])) == 1  # all correct, all wrong, or one rollout
            std = None if all_equal else width * _std(g["y"], 1)
            for i in g["idx"]:
                base[i] = g["mean"]
                if all_equal:
                    keep[i] = False
                    zero_adv[i] = True
                else:
                    divide[i] = std + eps

    elif name == "prior":
        for g in groups.values():
            for i in g["idx"]:
                base[i] = g["prior"]

    elif name in ("v05_eb", "v05_eb_loo"):
        tau2 = options.get("tau2")
        if tau2 is not None and not tau2 >= 0:
            raise ValueError("tau2 must be >= 0")
        for gid, g in groups.items():
            fit, sigma2 = fit_tau2_sigma2(groups, exclude=gid if name == "v05_eb_loo" else None)
            t2 = fit if tau2 is None else tau2
            if t2 is None:
                raise ValueError("tau2 is not identifiable: no (other) group has >= 2 rollouts")
            p = g["prior"]
            for i in g["idx"]:
                v, k = (g["mean"], g["k"]) if name == "v05_eb" else others(g, i)
                w = gauss_weight(t2, sigma2, k)
                if k == 0:
                    v = p
                base[i] = _fuse(w, v, p)
                weight[i] = w

    elif name == "v05_eb_mix":
        for gid, w in mix_weights(groups, options.get("pi"), options.get("tau2"), options.get("tau2_big")).items():
            g = groups[gid]
            for i in g["idx"]:
                base[i] = _fuse(w, g["mean"], g["prior"])
                weight[i] = w

    elif name in ("v05_paper", "v05_bernoulli", "v05_prior_var", "v05_eb_beta"):
        if name == "v05_eb_beta":
            rho = options.get("rho")
            if rho is not None and not 0.0 <= rho <= 1.0:
                raise ValueError("rho must lie in [0, 1]")
            if rho is None:
                rho = fit_rho(groups)
        for g in groups.values():
            v, k, p = g["mean"], g["k"], g["prior"]
            if name == "v05_paper":
                w = paper_weight(v, k, p)
            elif name == "v05_bernoulli":
                w = bernoulli_weight(v, k, p)
            elif name == "v05_prior_var":
                w = prior_var_weight(v, k, p, g["prior_var"])
            else:
                w = eb_weight(k, rho)
            for i in g["idx"]:
                base[i] = _fuse(w, v, p)
                weight[i] = w

    elif name in ("v05_paper_loo", "v05_bernoulli_loo", "v05_prior_var_loo", "v05_eb_beta_loo"):
        rho_by_group = {}
        if name == "v05_eb_beta_loo":
            rho = options.get("rho")
            if rho is not None and not 0.0 <= rho <= 1.0:
                raise ValueError("rho must lie in [0, 1]")
            for gid in groups:
                rho_by_group[gid] = rho if rho is not None else fit_rho(groups, exclude=gid)
        for gid, g in groups.items():
            p = g["prior"]
            for i in g["idx"]:
                v, k = others(g, i)
                if k == 0:  # a singleton: its leave-one-out baseline is the prior
                    w, v = 0.0, p
                elif name == "v05_paper_loo":
                    w = paper_weight(v, k, p)
                elif name == "v05_bernoulli_loo":
                    w = bernoulli_weight(v, k, p)
                elif name == "v05_prior_var_loo":
                    w = prior_var_weight(v, k, p, g["prior_var"])
                else:
                    w = eb_weight(k, rho_by_group[gid])
                base[i] = _fuse(w, v, p)
                weight[i] = w

    elif name in ("eb_batch", "v05_eb_reg"):
        tau2 = options.get("tau2")
        if name == "eb_batch":
            for g in groups.values():
                g.setdefault("prior", 0.0)
            a, b, fitted = line_fit(groups, 0.0, options.get("global_mean"))
        else:
            a, b, fitted = line_fit(groups, options.get("slope"), options.get("intercept"))
        centre = {gid: min(max(a + b * g["prior"], 0.0), 1.0) for gid, g in groups.items()}
        for gid, w in centre_weights(groups, centre, fitted, tau2).items():
            g = groups[gid]
            for i in g["idx"]:
                base[i] = g["mean"] if w == 1.0 else _fuse(w, g["mean"], centre[gid])
                if weight is not None:
                    weight[i] = w

    elif name == "v05_eb_reg_loo":
        slope, intercept, tau2 = options.get("slope"), options.get("intercept"), options.get("tau2")
        if (slope is None or intercept is None) and len(groups) < 2:
            raise ValueError("the line cannot be fitted without the only group")
        for gid, g in groups.items():
            centre, t2, sigma2, through = reg_loo_fit(groups, gid, slope, intercept, tau2)
            for i in g["idx"]:
                v, k = others(g, i)
                if k == 0:
                    w, v = 0.0, centre
                elif through:
                    w = 1.0
                else:
                    w = gauss_weight(t2, sigma2, k)
                base[i] = v if w == 1.0 else _fuse(w, v, centre)
                weight[i] = w

    elif name == "js_loo":
        for gid, g in groups.items():
            if g["k"] < 2:
                raise ValueError(f"group {gid!r} has 1 rollout")
        for gid, (w, rest) in js_weights(groups).items():
            g = groups[gid]
            for i in g["idx"]:
                u = others(g, i)[0]
                base[i] = u if w == 1.0 else _fuse(w, u, rest)

    else:
        raise KeyError(f"no reference for estimator {name!r}")

    baseline = [lo + width * b if (lo, hi) != (0.0, 1.0) else b for b in base]
    advantage = [0.0 if zero_adv[i] else (r[i] - baseline[i]) / divide[i] for i in range(n)]
    return {"baseline": baseline, "advantage": advantage, "weight": weight, "keep": keep}
