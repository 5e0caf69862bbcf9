"""The guard on TRL's private members: ``trl_mismatches`` checks every member the adapter touches against the
installed TRL (methods, the behaviour inside them, a built trainer's attributes), the trainer refuses a TRL
that differs, the adapter touches no private member the guard does not list, and ``docs/trl.md`` lists them all.
The one writer into TRL's metrics is ``internals.log_metrics``."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

pytest.importorskip("trl", reason="needs the v05[trl] extra (trl, datasets, accelerate)")
import trl
from trl import GRPOTrainer
from trl_helpers import char_tokenizer, dataset, grpo_args, parity_reward, tiny_qwen2, v05_args

from v05.integrations.trl import V05GRPOTrainer, internals, trl_mismatches

pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning", "ignore::UserWarning")

ROOT = Path(__file__).resolve().parents[2]
ADAPTER = ROOT / "src" / "v05" / "integrations" / "trl"
GUARDED = set(internals.TRL_HOOKS) | {name for name, _ in internals.TRL_SOURCE} | set(internals.TRL_ATTRIBUTES)


@pytest.fixture(scope="module")
def grpo_trainer(tmp_path_factory):
    return GRPOTrainer(model=tiny_qwen2(), reward_funcs=parity_reward, args=grpo_args(tmp_path_factory.mktemp("g")),
                       train_dataset=dataset(), processing_class=char_tokenizer())


def test_the_installed_trl_has_every_member_we_touch(grpo_trainer):
    assert trl.__version__.startswith("1.16."), "v05[trl] pins trl>=1.16,<1.17"
    assert trl_mismatches() == []
    assert trl_mismatches(trainer=grpo_trainer) == []


def test_a_trl_without_them_is_named_plainly():
    class Changed:
        def _generate_and_score_completions(self, inputs, mode):
            pass

    problems = trl_mismatches(Changed)
    assert "Changed._calculate_rewards is missing" in problems
    assert any(p.startswith("Changed._generate_and_score_completions('self', 'inputs', 'mode')") for p in problems)
    assert any("no longer holds 'self._calculate_rewards('" in p for p in problems)
    assert "Changed._prepare_inputs is missing" in problems


def test_a_trainer_whose_logs_changed_shape_is_named(grpo_trainer, monkeypatch):
    monkeypatch.setattr(grpo_trainer, "_metrics", {"train": {}, "eval": {}})
    monkeypatch.setattr(grpo_trainer, "_logs", {"prompt": []})
    monkeypatch.delattr(grpo_trainer, "num_generations_eval")
    problems = trl_mismatches(trainer=grpo_trainer)
    assert any(p.startswith("GRPOTrainer._metrics should be a dict {'train', 'eval'} of defaultdict(list)")
               for p in problems)
    assert any(p.startswith("GRPOTrainer._logs should be a dict whose 'advantages' is a deque") for p in problems)
    assert "GRPOTrainer.num_generations_eval is missing" in problems


def test_the_trainer_refuses_a_trl_that_differs(tmp_path, monkeypatch):
    monkeypatch.setitem(internals.TRL_HOOKS, "_calculate_rewards", ("self", "inputs"))
    with pytest.raises(ImportError, match=r"trl>=1.16,<1.17 .*GRPOTrainer._calculate_rewards\("):
        V05GRPOTrainer(model=None, reward_funcs=parity_reward, args=v05_args(tmp_path))  # before any model
    monkeypatch.undo()
    monkeypatch.setitem(internals.TRL_ATTRIBUTES, "num_generations", (lambda v: False, "a str"))
    with pytest.raises(ImportError, match=r"V05GRPOTrainer.num_generations should be a str; got int"):
        V05GRPOTrainer(model=tiny_qwen2(), reward_funcs=parity_reward, args=v05_args(tmp_path),
                       train_dataset=dataset(), processing_class=char_tokenizer())


def private_trl_members_used() -> set[str]:
    """Private names the trainer subclass and the internals module reach on the trainer (``self._x``,
    ``super()._x``, ``trainer._x``), the methods it overrides, and the non-underscore TRL attributes it reads, its
    own ``_v05`` ones aside (the other modules never see the trainer)."""
    names = set()
    for path in (ADAPTER / "trainer.py", ADAPTER / "internals.py"):
        text = path.read_text(encoding="utf-8")
        names |= set(re.findall(r"(?:self|super\(\)|trainer)\.(_[a-z]\w*)", text))
        if path.name == "trainer.py":
            names |= set(re.findall(r"^    def (_[a-z]\w*)\(", text, flags=re.M))
            names |= {n for n in ("reward_weights", "num_generations", "num_generations_eval",
                                  "current_gradient_accumulation_steps") if f"self.{n}" in text}
    return {n for n in names if not n.startswith("_v05")}


def test_the_guard_covers_every_private_member_the_adapter_touches():
    used = private_trl_members_used()
    assert {"_metrics", "_logs", "_calculate_rewards", "_get_output_dir"} <= used  # the scan finds them
    assert used - GUARDED - {"current_gradient_accumulation_steps"} == set()
    assert any("current_gradient_accumulation_steps" in text for _, text in internals.TRL_SOURCE)


def test_docs_trl_lists_every_guarded_member():
    docs = (ROOT / "docs" / "trl.md").read_text(encoding="utf-8")
    section = docs[docs.index("## TRL internals it touches"):]
    section = section[:section.index("\n## ", 1)]
    listed = set(re.findall(r"^\| `([\w.\[\]\"']+)`", section, flags=re.M))
    listed = {re.sub(r"\[.*", "", n) for n in listed}
    assert GUARDED | {"current_gradient_accumulation_steps"} <= listed, GUARDED - listed


def test_log_metrics_is_the_only_writer_of_trl_metrics():
    writers = [p.name for p in ADAPTER.glob("*.py") if re.search(r"\._metrics\[", p.read_text(encoding="utf-8"))]
    assert writers == ["internals.py"]
