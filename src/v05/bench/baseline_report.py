"""Reports of the baseline-MSE benchmark: JSON for machines, Markdown and PNG plots for people.

Every MSE carries its 95% interval over seeds (``±``); ratios are to the plain mean (``mean``). The Bayes
oracle (``oracle``, the limit: not an estimator a trainer can run) is marked wherever it appears, and has a
section of its own: every estimator's excess MSE over it. The plots draw whichever estimators were run (at
most ``MAX_PLOTTED``; beyond that the ``PLOTTED`` selection, and the oracle), so any ``--estimators`` subset
gives readable figures. matplotlib is imported only when a plot is drawn.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from v05.stats import ci95
from v05.bench.baseline_lookup import mean_at
from v05.bench.baseline_lookup import order_priors as _order_priors
from v05.bench.baseline_rules_report import plot_rules, rules_markdown
from v05.bench.oracle import ORACLE
from v05.bench.report_files import write_documents

PLOTTED = ("mean", "rloo", "prior", "v05_paper", "v05_bernoulli", "v05_prior_var", "v05_eb", "v05_eb_loo",
           "v05_eb_mix")
"""Estimators drawn when more than ``MAX_PLOTTED`` were run, each with one colour in every panel."""
MAX_PLOTTED = 10
N_COLOURS = 10


# -- reading the result -----------------------------------------------------------------------------------


def _index(result: dict) -> dict:
    return {(r["estimator"], r["k"], r["prior"], r["osla"] or False, r.get("max_rounds")): r for r in result["rows"]}


def _fixed(idx: dict, est: str, k: int, prior: str) -> dict | None:
    return idx.get((est, k, prior, False, None))


def _estimators(result: dict) -> list[str]:
    """The estimators in the rows: the mean first, the oracle last."""
    return sorted({r["estimator"] for r in result["rows"]}, key=lambda e: (e == ORACLE, e != "mean", e))


def _name(est: str, default: str, note: bool = True) -> str:
    """An estimator's name in a Markdown table: the default in bold, the oracle marked as the limit."""
    if est == default:
        return f"**{est}**" + (" (default)" if note else "")
    return "*oracle* (limit)" if est == ORACLE else est


def _ratio_ci(row: dict, refs: list[float | None]) -> float | None:
    """95% interval of the per-seed ratios row / ref (None where a seed has no reference)."""
    if any(r is None or r <= 0 for r in refs) or len(refs) != len(row["seeds"]["mse"]):
        return None
    return ci95(np.asarray(row["seeds"]["mse"]) / np.asarray(refs))


def _mse(row: dict) -> str:
    ci = row.get("mse_ci95")
    return f"{1e3 * row['mse']:.2f}" + ("" if ci is None else f" ± {1e3 * ci:.2f}")


# -- Markdown ---------------------------------------------------------------------------------------------


def glance(result: dict, k: int) -> list[str]:
    """One table: every estimator (rows) against every prior (columns) at one k, MSE x 1e3 ± 95% interval
    (ratio to the mean)."""
    idx = _index(result)
    priors = _order_priors(result)
    lines = ["| estimator | " + " | ".join(f"{p} ({1e3 * result['prior_mse'][p]:.1f})" for p in priors) + " |",
             "|---|" + "---|" * len(priors)]
    for est in _estimators(result):
        cells = []
        for p in priors:
            row, ref = _fixed(idx, est, k, p), _fixed(idx, "mean", k, p)
            cells.append("-" if row is None or ref is None else f"{_mse(row)} ({row['mse'] / ref['mse']:.2f})")
        if any(c != "-" for c in cells):
            lines.append(f"| {_name(est, result['default'])} | " + " | ".join(cells) + " |")
    return lines + _worst_ratio(result, idx)


def _worst_ratio(result: dict, idx: dict) -> list[str]:
    default = result["default"]
    worst = [(row["mse"] / ref["mse"], k, p, row, ref) for (e, k, p, o, _), row in idx.items()
             if e == default and not o and (ref := _fixed(idx, "mean", k, p)) is not None]
    if not worst:
        return []
    ratio, k, p, row, ref = max(worst, key=lambda w: w[0])
    ci = _ratio_ci(row, ref["seeds"]["mse"])
    spread = "" if ci is None else f" ± {ci:.3f}"
    return ["", f"Worst ratio of the default `{default}` to the mean over all priors and k: {ratio:.3f}{spread} "
                f"(k={k}, prior {p})."]


def _prior_table(result: dict, idx: dict, prior: str) -> list[str]:
    ks = result["config"]["ks"]
    lines = [f"## prior: {prior} (prior MSE x 1e3 = {1e3 * result['prior_mse'][prior]:.1f})", "",
             "| estimator | " + " | ".join(f"k={k}" for k in ks) + " |", "|---|" + "---|" * len(ks)]
    for est in _estimators(result):
        cells = []
        for k in ks:
            row, ref = _fixed(idx, est, k, prior), _fixed(idx, "mean", k, prior)
            ratio = f" ({row['mse'] / ref['mse']:.2f})" if row and ref and ref["mse"] > 0 else ""
            cells.append("-" if row is None else _mse(row) + ratio)
        if any(c != "-" for c in cells):
            lines.append(f"| {_name(est, result['default'], note=False)} | " + " | ".join(cells) + " |")
    return lines + [""]


def _seed_ratios(result: dict, row: dict) -> np.ndarray | None:
    """Per seed: an OSLA row's MSE over the mean's MSE at that seed's rollouts (None where one is missing)."""
    refs = [mean_at(result, row["prior"], n, seed=s) for s, n in enumerate(row["seeds"]["mean_rollouts"])]
    if any(r is None or r <= 0 for r in refs):
        return None
    return np.asarray(row["seeds"]["mse"]) / np.asarray(refs)


def _pm(value: float | None, per_seed: np.ndarray | None, digits: int = 2) -> str:
    """``value ± the 95% interval of its per-seed values`` ("-" without a value)."""
    if value is None:
        return "-"
    ci = None if per_seed is None else ci95(per_seed)
    return f"{value:.{digits}f}" + ("" if ci is None else f" ± {ci:.{digits}f}")


def _paired(row: dict, ref: dict) -> np.ndarray | None:
    """Per-seed MSE differences row - ref x 1e3 (cells scored on the same rollouts), None if seeds differ."""
    a, b = row["seeds"]["mse"], ref["seeds"]["mse"]
    return None if len(a) != len(b) else 1e3 * (np.asarray(a) - np.asarray(b))


def _limit_cell(idx: dict, est: str, k: int, prior: str, default: str) -> str:
    row, limit, ref = _fixed(idx, est, k, prior), _fixed(idx, ORACLE, k, prior), _fixed(idx, default, k, prior)
    if row is None or limit is None:
        return "-"
    if est == ORACLE:
        return _mse(row)
    cell = _pm(1e3 * (row["mse"] - limit["mse"]), _paired(row, limit))
    if ref is not None and est != default:
        cell += f" ({_pm(1e3 * (row['mse'] - ref['mse']), _paired(row, ref))})"
    return cell


def limit_tables(result: dict) -> list[str]:
    """Per prior: the oracle's MSE, every estimator's excess MSE over it and its difference to the default."""
    idx = _index(result)
    ks = result["config"]["ks"]
    default = result["default"]
    lines = ["## Against the limit (Bayes oracle)", "",
             "`oracle` is the posterior mean of the pass rate given the prompt's prior and rollouts under the true "
             "distribution of pass rates given the prior: the lowest MSE any baseline that uses them can reach, not "
             "an estimator a trainer can run. First row: its MSE x 1e3. Other rows: the estimator's excess MSE over "
             "it (x 1e3, ± the 95% interval of the per-seed differences: the same rollouts), and in brackets its MSE "
             f"minus the default `{default}`'s (negative: closer to the limit). The oracle's truth model per prior:", ""]
    lines += [f"- {prior}: {how}" for prior, how in result["oracle"].items()] + [""]
    for prior in _order_priors(result):
        if prior not in result["oracle"]:
            continue
        lines += [f"### prior: {prior} (prior MSE x 1e3 = {1e3 * result['prior_mse'][prior]:.1f})", "",
                  "| estimator | " + " | ".join(f"k={k}" for k in ks) + " |", "|---|" + "---|" * len(ks)]
        for est in [ORACLE] + [e for e in _estimators(result) if e != ORACLE]:
            cells = [_limit_cell(idx, est, k, prior, default) for k in ks]
            if any(c != "-" for c in cells):
                lines.append(f"| {_name(est, default)} | " + " | ".join(cells) + " |")
        lines.append("")
    return lines


def _share(row: dict, mean: dict, limit: dict) -> tuple[float, np.ndarray | None] | None:
    """1 - (MSE - oracle's) / (the mean's MSE - oracle's), pooled and per seed; None where the mean is at the
    limit (nothing to gain)."""
    if mean["mse"] <= limit["mse"]:
        return None
    pooled = 1.0 - (row["mse"] - limit["mse"]) / (mean["mse"] - limit["mse"])
    a, m, o = (np.asarray(r["seeds"]["mse"]) for r in (row, mean, limit))
    same = len(a) == len(m) == len(o) and (m > o).all()
    return pooled, (1.0 - (a - o) / (m - o)) if same else None


def share_tables(result: dict) -> list[str]:
    """Per k: the share of the possible gain each estimator takes, prior by prior."""
    idx = _index(result)
    names = [e for e in _estimators(result) if e not in ("mean", ORACLE)]
    lines = ["## Share of the possible gain", "",
             "1 - (MSE - oracle's MSE) / (mean's MSE - oracle's MSE), ± the 95% interval of its per-seed values: 1 "
             "reaches the limit, 0 is no better than the plain mean, below 0 is worse.", ""]
    for k in result["config"]["ks"]:
        lines += [f"### k = {k}", "", "| prior | " + " | ".join(_name(e, result["default"], note=False) for e in names)
                  + " |", "|---|" + "---|" * len(names)]
        for prior in _order_priors(result):
            mean, limit = _fixed(idx, "mean", k, prior), _fixed(idx, ORACLE, k, prior)
            if mean is None or limit is None:
                continue
            cells = []
            for est in names:
                row = _fixed(idx, est, k, prior)
                share = None if row is None else _share(row, mean, limit)
                cells.append("-" if share is None else _pm(*share))
            lines.append(f"| {prior} | " + " | ".join(cells) + " |")
        lines.append("")
    return lines


def _osla_table(result: dict, cfg: dict) -> list[str]:
    """The rows of one OSLA rule, capped and uncapped, against the mean at equal rollouts."""
    rule = cfg["rule"]
    lines = [f"## OSLA rule '{rule}' (k_init={cfg['k_init']}, k_max={cfg['k_max']}, c={cfg['cost']})", "",
             "rounds: generation rounds per batch, the first included; ratio: MSE over the plain mean's MSE at the "
             "same rollouts per prompt (interpolated log-log between the simulated k), ± the 95% interval of its "
             "per-seed values; vs none: a capped run's ratio minus the uncapped run's, its interval paired by seed "
             "(the capped run replays the uncapped run's rewards).", "",
             "| prior | estimator | max_rounds | rounds | mean rollouts | MSE x 1e3 | mean at equal rollouts | ratio "
             "| vs none |",
             "|---|---|---|---|---|---|---|---|---|"]
    rows = [r for r in result["rows"] if r["osla"] == rule]
    uncapped = {(r["prior"], r["estimator"]): r for r in rows if r["max_rounds"] is None}
    key = lambda r: (result["prior_mse"][r["prior"]], r["estimator"], -1 if r["max_rounds"] is None else r["max_rounds"])
    for r in sorted(rows, key=key):
        same = mean_at(result, r["prior"], r["mean_rollouts"])
        ratio, ratios = (None, None) if same is None else (r["mse"] / same, _seed_ratios(result, r))
        base = uncapped.get((r["prior"], r["estimator"]))
        change = changes = None
        if r["max_rounds"] is not None and base is not None and ratio is not None:
            base_same = mean_at(result, base["prior"], base["mean_rollouts"])
            base_ratios = _seed_ratios(result, base)
            change = None if base_same is None else ratio - base["mse"] / base_same
            changes = None if ratios is None or base_ratios is None else ratios - base_ratios
        lines.append(f"| {r['prior']} | {r['estimator']} | {'none' if r['max_rounds'] is None else r['max_rounds']} | "
                     f"{r['rounds']:.2f} | {r['mean_rollouts']:.2f} | {_mse(r)} | "
                     f"{'-' if same is None else f'{1e3 * same:.2f}'} | {_pm(ratio, ratios)} | {_pm(change, changes, 3)} |")
    return lines + [""]


def markdown(result: dict, title: str) -> str:
    """Per prior source, MSE x 1e3 of every estimator at every k, with its ratio to the plain mean; then the
    excess over the oracle (when it was run) and the OSLA runs."""
    idx = _index(result)
    ks = result["config"]["ks"]
    lines = [f"# {title}", "",
             f"Baseline MSE against the true pass rate (x 1e3, ± the 95% interval over seeds; ratio to the plain "
             f"mean `mean` in brackets), {result['config']['seeds']} seed(s), {result['config']['n_rows']} prompts, "
             f"batches of {result['config']['batch_size']}. Default estimator `v05` = `{result['default']}`.", ""]
    at = 4 if 4 in ks else ks[len(ks) // 2]
    lines += [f"## At a glance: k = {at}, every prior (prior MSE x 1e3 in the header)", ""] + glance(result, at) + [""]
    for prior in _order_priors(result):
        lines += _prior_table(result, idx, prior)
    if result.get("oracle"):
        lines += limit_tables(result) + share_tables(result)
    for cfg in result["config"]["osla"]:
        lines += _osla_table(result, cfg)
    if result["undefined"]:
        lines += ["Undefined (left out): " + "; ".join(result["undefined"]), ""]
    if result.get("partly_undefined"):
        lines += ["Partly undefined: " + "; ".join(result["partly_undefined"]), ""]
    if "rule_rows" in result:
        lines += rules_markdown(result)
    return "\n".join(lines)


# -- plots ------------------------------------------------------------------------------------------------


def plotted(result: dict) -> list[str]:
    """The estimators the plots draw: all that were run when they are few, else the ``PLOTTED`` selection."""
    present = _estimators(result)
    if len(present) > MAX_PLOTTED:
        present = [e for e in present if e in PLOTTED or e == ORACLE]
    return sorted(present, key=lambda e: (PLOTTED.index(e) if e in PLOTTED else len(PLOTTED), e))


def _colours(names: list[str]) -> dict[str, str]:
    """``PLOTTED`` estimators keep their colour in every report; others take the free ones."""
    fixed = {e: f"C{PLOTTED.index(e)}" for e in names if e in PLOTTED}
    free = [f"C{i}" for i in range(N_COLOURS) if f"C{i}" not in fixed.values()]
    others = [e for e in names if e not in fixed and e != ORACLE]
    return {**fixed, **{e: free[i % len(free)] for i, e in enumerate(others)}, ORACLE: "black"}


def _label(est: str) -> str:
    return "oracle (limit)" if est == ORACLE else est


def _style(est: str, default: str, colour: str) -> dict:
    if est == ORACLE:
        return {"color": colour, "ls": ":", "lw": 2.2, "marker": "s", "ms": 3, "label": _label(est)}
    return {"color": colour, "ls": "--" if est.endswith("_loo") or est == "rloo" else "-",
            "lw": 2.6 if est in ("mean", default) else 1.3, "marker": "o", "ms": 3, "label": est}


def _grid(n: int, width: float, height: float):
    from matplotlib.figure import Figure

    cols = min(3, n)
    rows = -(-n // cols)
    fig = Figure(figsize=(width * cols, height * rows))
    axes = fig.subplots(rows, cols, squeeze=False, sharey=True)
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    return fig, axes


def _note(ax, note: str) -> None:
    """Say across an empty panel why it is empty."""
    ax.text(0.5, 0.5, note, ha="center", va="center", transform=ax.transAxes, fontsize=9, wrap=True)


def _finish(fig, axes, path: Path, order: list[str]) -> None:
    """One legend for all panels (each label once, in ``order``), layout, save."""
    handles = {}
    for ax in axes.flat:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(lab, h)
    labels = [lab for lab in order if lab in handles]
    ncol = min(len(labels), 8)
    legend_rows = -(-len(labels) // ncol) if labels else 0
    if labels:
        fig.legend([handles[lab] for lab in labels], labels, loc="lower center", ncol=ncol, fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.02 + 0.04 * legend_rows / len(axes), 1, 1))
    fig.savefig(path, dpi=110)


def plot_mse_vs_k(result: dict, path: Path) -> None:
    """One panel per prior source: MSE against k (log-log) for the plotted estimators."""
    idx = _index(result)
    priors = _order_priors(result)
    ks = result["config"]["ks"]
    names = plotted(result)
    colours = _colours(names)
    fig, axes = _grid(len(priors), 4.6, 3.6)
    for ax, prior in zip(axes.flat, priors):
        drawn = False
        for est in names:
            pts = [(k, row["mse"]) for k in ks if (row := _fixed(idx, est, k, prior)) and row["mse"] > 0]
            if pts:
                ax.plot(*zip(*pts), **_style(est, result["default"], colours[est]))
                drawn = True
        ax.set(title=f"prior {prior} (MSE {result['prior_mse'][prior]:.3f})", xlabel="rollouts per prompt k")
        if drawn:
            ax.set(xscale="log", yscale="log")
            ax.set_xticks(ks, [str(k) for k in ks])
        else:
            _note(ax, "no estimator defined here")
        ax.grid(alpha=0.3, which="both")
    for ax in axes[:, 0]:
        ax.set_ylabel("baseline MSE vs true pass rate")
    _finish(fig, axes, path, [_label(e) for e in names])


def _ratio_points(result: dict, idx: dict, est: str, k: int, priors: list[str]) -> list[tuple[float, float]]:
    """(prior MSE, MSE / the plain mean's MSE) of one estimator at one k, for the priors where both exist."""
    return [(result["prior_mse"][p], row["mse"] / ref["mse"]) for p in priors
            if (row := _fixed(idx, est, k, p)) and (ref := _fixed(idx, "mean", k, p)) and ref["mse"] > 0
            and row["mse"] > 0 and result["prior_mse"][p] > 0]


def plot_mse_vs_prior(result: dict, path: Path) -> None:
    """One panel per k: each estimator's MSE relative to the plain mean against the prior's MSE. A line joins
    the logit-noise priors (one family); every other prior (table, value, hallucination) is a marker on a
    labelled dotted line, since joining different kinds of prior would draw a trend that is not there."""
    idx = _index(result)
    priors = _order_priors(result)
    family = [p for p in priors if p.startswith("noise=")]
    others = [p for p in priors if p not in family and result["prior_mse"][p] > 0]
    ks = result["config"]["ks"]
    names = [e for e in plotted(result) if e != "mean"]
    colours = _colours(plotted(result))
    fig, axes = _grid(len(ks), 4.4, 3.6)
    for ax, k in zip(axes.flat, ks):
        drawn = False
        for est in names:
            style = _style(est, result["default"], colours[est])
            if pts := _ratio_points(result, idx, est, k, family):
                ax.plot(*zip(*pts), **style)
            if extra := _ratio_points(result, idx, est, k, others):
                ax.plot(*zip(*extra), **{**style, "ls": "none", "marker": "D", "ms": 4,
                                         "label": None if pts else style["label"]})
            drawn = drawn or bool(pts or extra)
        for p in others:
            ax.axvline(result["prior_mse"][p], color="grey", lw=0.6, ls=":")
            ax.text(result["prior_mse"][p], 0.02, p, rotation=90, fontsize=7, va="bottom", ha="right",
                    transform=ax.get_xaxis_transform())
        ax.axhline(1.0, color="black", lw=1)
        ax.set(title=f"k = {k}", xlabel="prior MSE (worse prior ->)")
        if drawn:
            ax.set(xscale="log", yscale="log")
        else:
            _note(ax, "no estimator defined here" if names else "only the plain mean was run: nothing to compare")
        ax.grid(alpha=0.3, which="both")
    for ax in axes[:, 0]:
        ax.set_ylabel("MSE / MSE of the plain mean")
    low, high = axes[0, 0].get_ylim()  # shared: keep 1 visible with some room, even when every ratio is 1
    axes[0, 0].set_ylim(min(low, 0.8), max(high, 1.25))
    _finish(fig, axes, path, [_label(e) for e in names])


def plot_osla_rounds(result: dict, path: Path) -> None:
    """One panel per OSLA rule: the default estimator's MSE ratio to the mean at equal rollouts against the
    generation rounds per batch, one line per prior, a point per max_rounds cap (labelled)."""
    rules = [c["rule"] for c in result["config"]["osla"]]
    priors = _order_priors(result)
    fig, axes = _grid(len(rules), 4.8, 3.8)
    for ax, rule in zip(axes.flat, rules):
        rows = [r for r in result["rows"] if r["osla"] == rule]
        est = result["default"] if any(r["estimator"] == result["default"] for r in rows) else \
            min((r["estimator"] for r in rows), default=None)
        drawn = False
        for i, prior in enumerate(priors):
            pts = sorted(((r["rounds"], r["mse"] / same, r["max_rounds"]) for r in rows
                          if r["estimator"] == est and r["prior"] == prior
                          and (same := mean_at(result, prior, r["mean_rollouts"]))), key=lambda p: p[0])
            if not pts:
                continue
            ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", color=f"C{i % N_COLOURS}", label=prior)
            drawn = True
            for x, y, cap in pts:
                ax.annotate("none" if cap is None else str(cap), (x, y), fontsize=7, xytext=(3, 3),
                            textcoords="offset points")
        ax.axhline(1.0, color="black", lw=1)
        ax.set(title=f"rule '{rule}': {est}", xlabel="generation rounds per batch (label: max_rounds)")
        if not drawn:
            _note(ax, "no OSLA row to compare at equal rollouts")
        ax.grid(alpha=0.3)
    for ax in axes[:, 0]:
        ax.set_ylabel("MSE / mean's MSE at equal rollouts")
    _finish(fig, axes, path, priors)


def write_report(result: dict, out: Path, title: str) -> dict[str, Path]:
    """Write baseline.json, baseline.md, mse_vs_k.png, mse_vs_prior.png (and osla_rounds.png when round caps
    were run, rules.png when rules were) under ``out``; returns their paths."""
    out = Path(out)
    json_path, md_path = write_documents(out, {"baseline.json": result, "baseline.md": markdown(result, title)}).values()
    paths = {"json": json_path, "markdown": md_path, "mse_vs_k": out / "mse_vs_k.png", "mse_vs_prior": out / "mse_vs_prior.png"}
    plot_mse_vs_k(result, paths["mse_vs_k"])
    plot_mse_vs_prior(result, paths["mse_vs_prior"])
    if result["config"].get("max_rounds"):
        paths["osla_rounds"] = out / "osla_rounds.png"
        plot_osla_rounds(result, paths["osla_rounds"])
    if "rule_rows" in result:
        paths["rules"] = out / "rules.png"
        plot_rules(result, paths["rules"])
    return paths
