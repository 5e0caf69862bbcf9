"""``v05 demo``'s report from run records (no training): the table's columns, and plots whose legends and
labels agree with it."""

import numpy as np
import pytest

from v05.bench.demo import METHOD_LIST, DemoSettings, markdown, plot, summarise, summarise_run

SETTINGS = DemoSettings(seeds=(0, 1), total_rollouts=400, eval_every_rollouts=200)


def records(method, seed: int) -> list[dict]:
    """Metric records of one run in the engine's format: 8 prompts a step, rollouts per prompt by method."""
    rng = np.random.default_rng([seed, len(method.slug)])
    k = method.settings.get("method.group_size", 4)
    out, spent, step = [{"step": 0, "rollouts": 0, "eval/accuracy": 0.3}], 0, 0
    while spent < SETTINGS.total_rollouts:
        step += 1
        extra = rng.integers(0, 3) if method.slug == "v05_osla" else rng.integers(0, 2) * k if method.slug == "dapo_k16" else 0
        per_step = 8 * k + extra * 8
        spent += per_step
        rec = {"step": step, "rollouts": spent, "train/grad_norm": float(rng.uniform(0.3, 0.9)),
               "budget/rollouts_step": per_step, "budget/groups": 8,
               **{f"time/{p}_s": 0.01 for p in ("value", "sample", "estimator", "update")}}
        if step % 2 == 0:
            rec.update({"baseline/mse_true": float(rng.uniform(0.01, 0.08)), "baseline/mse_true_group_mean": 0.05})
        if spent >= SETTINGS.total_rollouts or step % 3 == 0:
            rec["eval/accuracy"] = float(rng.uniform(0.3, 0.4))
        out.append(rec)
    return out


@pytest.fixture(scope="module")
def report():
    runs = [summarise_run(m.label, s, records(m, s)) for s in SETTINGS.seeds for m in METHOD_LIST]
    return {"settings": {**SETTINGS.__dict__, "seeds": list(SETTINGS.seeds)},
            "methods": {m.label: {} for m in METHOD_LIST}, "runs": runs, "summary": summarise(runs, SETTINGS)}


def test_gradient_norm_spread_is_the_variance_the_readme_quotes(report):
    run = report["runs"][0]
    grad = np.array([g for _, g in run["grad_norm"]])
    assert run["grad_norm_var"] == pytest.approx(grad.var())
    text = markdown(report)
    assert "| grad-norm mean | grad-norm var | grad-norm CV |" in text and "grad-norm sd" not in text
    v05 = report["summary"]["methods"][METHOD_LIST[0].label]
    assert f"| {v05['grad_norm_var_mean']:.4f} |" in text


def test_plots_show_the_tables_rollouts_per_prompt_and_readable_axes(report, tmp_path, monkeypatch):
    import matplotlib.pyplot as plt

    figures, close = [], plt.close
    monkeypatch.setattr(plt, "close", figures.append)  # keep each figure to inspect it
    plot(report, tmp_path)
    for name in ("accuracy.png", "grad_norm.png", "baseline_error.png", "rollouts_per_prompt.png"):
        assert (tmp_path / name).stat().st_size > 0
    accuracy, grad, baseline, per_prompt = figures
    for fig in (accuracy, grad, baseline):  # the legend sits right of the axes: it covers no data
        ax = fig.axes[0]
        legend = ax.get_legend().get_window_extent(fig.canvas.get_renderer())
        assert legend.x0 > ax.get_window_extent(fig.canvas.get_renderer()).x1
    baseline.canvas.draw()
    labels = [t.get_text() for t in baseline.axes[0].get_yticklabels() if t.get_text()]
    assert len(labels) >= 3 and all("10^" not in t and "\\times" not in t for t in labels)
    table = markdown(report)
    for ax, m in zip(per_prompt.axes, report["methods"]):
        mean = report["summary"]["methods"][m]["rollouts_per_prompt_mean"]
        assert ax.get_title(loc="left") == f"{m}: mean {mean:.2f}" and f"| {mean:.2f} |" in table
        for bar in ax.patches:  # bars are centred on the multiple of 0.5 they count
            if bar.get_height() > 0:
                centre = bar.get_x() + bar.get_width() / 2
                assert centre == pytest.approx(round(centre * 2) / 2)
    for fig in figures:
        close(fig)
