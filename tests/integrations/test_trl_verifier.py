"""RL^V in the real TRL trainer (``V05Config(verifier_coef=...)``) and its verification prompt, on a tiny random
Qwen2 with a character tokenizer (CPU, seconds), and one SmolLM2-135M-Instruct step."""

from __future__ import annotations

import math

import numpy as np
import pytest

pytest.importorskip("trl", reason="needs the v05[trl] extra (trl, datasets, accelerate)")
import torch
from trl import GRPOTrainer

from trl_helpers import char_tokenizer, dataset, parity_reward, v05_args
from v05_testing.chat import printable_tokenizer, qwen2
from v05.integrations.trl import V05Config, V05GRPOTrainer
from v05.tasks.verifier_chat import (PLAIN_SUFFIX, TEMPLATE, encode_verification, score_solutions, verdict_tokens,
                                  verification_loss, verification_prompt)

pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning", "ignore::UserWarning")


@pytest.mark.parametrize("chat", [False, True])
def test_the_verdict_is_read_after_whatever_yes_and_no_share(chat):
    tok = printable_tokenizer(chat)
    lead, yes, no = verdict_tokens(tok)
    assert (lead, yes, no) == ("" if chat else " ", tok.convert_tokens_to_ids("Y"), tok.convert_tokens_to_ids("N"))
    text = verification_prompt(tok, " 1+1? ", "it is \\boxed{2}\n")
    body = TEMPLATE.format(problem="1+1?", solution="it is \\boxed{2}")
    assert text == (f"<|user|>{body}\n<|assistant|>" if chat else body + PLAIN_SUFFIX + " ")


def test_a_tokenizer_that_cannot_tell_yes_from_no_is_refused():
    with pytest.raises(ValueError, match="cannot write .Yes."):
        verdict_tokens(char_tokenizer())  # lower-case characters only: Y and N are both unknown


def test_batched_left_padded_scores_equal_one_prompt_at_a_time():
    tok = printable_tokenizer(chat=True)
    model = qwen2(len(tok)).eval()
    problems, solutions = ["1+1?", "what is 12-7?", "2*3?"], ["2", "the answer is 5, since 12-7=5", "six"]
    ids, mask = encode_verification(tok, problems, solutions)
    assert ids.shape[0] == 3 and mask[:, -1].all() and not mask[:, 0].all()  # left-padded
    batched = score_solutions(model, tok, problems, solutions, batch_size=3)
    alone = np.concatenate([score_solutions(model, tok, [p], [s]) for p, s in zip(problems, solutions)])
    assert np.allclose(batched, alone, atol=1e-5) and np.all((0 < batched) & (batched < 1))


def test_verification_loss_is_the_weighted_next_token_cross_entropy_of_the_label():
    g = torch.Generator().manual_seed(0)
    logits, labels = torch.randn(5, 11, generator=g), torch.tensor([1, 0, 1, 1, 0], dtype=torch.bool)
    weight = torch.tensor([1.0, 2.0, 0.5, 1.0, 3.0])
    manual = [-math.log(math.exp(row[3 if lab else 7]) / sum(math.exp(x) for x in row))
              for row, lab in zip(logits.tolist(), labels.tolist())]
    expected = sum(w * m for w, m in zip(weight.tolist(), manual)) / weight.sum().item()
    assert verification_loss(logits, labels, weight, 3, 7).item() == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize(("overrides", "message"), [
    ({"verifier_coef": 0.0}, "verifier_coef == 0.0"),
    ({"verifier_coef": float("nan")}, "verifier_coef == nan"),
    ({"verifier_class_balance": True}, "verifier_class_balance = True needs verifier_coef"),
    ({"verifier_coef": 1.0, "verifier_class_balance": "yes"}, "verifier_class_balance must be True or False"),
])
def test_bad_verifier_settings_fail_when_the_config_is_built(tmp_path, overrides, message):
    with pytest.raises((TypeError, ValueError)) as e:
        v05_args(tmp_path, **overrides)
    assert message in str(e.value)


def test_a_tokenizer_without_a_verdict_is_named_before_training(tmp_path):
    with pytest.raises(ValueError, match="cannot write .Yes."):
        V05GRPOTrainer(model=qwen2(len(char_tokenizer())), reward_funcs=parity_reward,
                       args=v05_args(tmp_path, verifier_coef=1.0), train_dataset=dataset(),
                       processing_class=char_tokenizer())


def chat_parity(completions, **kwargs):
    """:func:`parity_reward` of conversational completions."""
    return parity_reward([c[0]["content"] for c in completions])


def _manual_verify_loss(model, tok, inputs, yes, no):
    """J_verify by a plain loop: one unpadded verification prompt at a time."""
    total, weights = 0.0, 0.0
    for ids, mask, label, w in zip(*(inputs[k] for k in ("v05_verify_ids", "v05_verify_mask", "v05_verify_label",
                                                          "v05_verify_weight"))):
        row = ids[mask.bool()][None]
        logp = torch.log_softmax(model(input_ids=row).logits[0, -1].float(), -1)
        total += -w.item() * logp[yes if label else no].item()
        weights += w.item()
    return total / weights


REINFORCE_ADA = {"rollout_rule": "reinforce_ada", "rollout_rule_options": {"n": 2, "k_max": 8, "max_rounds": 1}}


@pytest.mark.parametrize("balance, rule", [(False, {}), (True, {}), (False, REINFORCE_ADA)])
def test_the_loss_path_adds_the_verification_loss_of_each_completion(tmp_path, balance, rule):
    tok = printable_tokenizer(chat=True)
    prompts = [[{"role": "user", "content": f"what is {a}+{b}?"}] for a in range(4) for b in range(4)]
    from datasets import Dataset

    model = qwen2(len(tok))
    args = v05_args(tmp_path, verifier_coef=0.5, verifier_class_balance=balance, max_steps=2,
                    gradient_accumulation_steps=2, per_device_train_batch_size=4, **rule)
    trainer = V05GRPOTrainer(model=model, reward_funcs=chat_parity, args=args,
                             train_dataset=Dataset.from_dict({"prompt": prompts}), processing_class=tok)
    _, yes, no = verdict_tokens(tok)
    checked = []

    def compute_loss(model, inputs, return_outputs=False, num_items_in_batch=None):
        with torch.no_grad():
            rl = GRPOTrainer.compute_loss(trainer, model, inputs).item()
            verify = _manual_verify_loss(model, tok, inputs, yes, no)
        loss = V05GRPOTrainer.compute_loss(trainer, model, inputs, return_outputs, num_items_in_batch)
        assert loss.item() == pytest.approx(rl + 0.5 * verify / 2, rel=1e-4, abs=1e-6)  # 2 accumulation steps
        for ids, mask, cids, cmask, label in zip(inputs["v05_verify_ids"], inputs["v05_verify_mask"],
                                                 inputs["completion_ids"], inputs["completion_mask"],
                                                 inputs["v05_verify_label"]):
            completion = tok.decode(cids[cmask.bool()], skip_special_tokens=True)
            text = tok.decode(ids[mask.bool()])
            assert text.startswith("<|user|>what is ") and text.endswith("Answer Yes or No.\n<|assistant|>")
            assert f"Solution:\n{completion.strip()}\n\n" in text
            assert bool(label) == (parity_reward([completion])[0] == 1.0)
        checked.append(len(inputs["v05_verify_label"]))
        return loss

    trainer.compute_loss = compute_loss
    trainer.train()
    assert checked == ([2, 2, 2, 2] if rule else [4, 4, 4, 4])  # Reinforce-Ada: n = 2 of each prompt's 4 or 8
    logged = trainer.state.log_history[0]
    for key in ("verifier/loss", "verifier/accuracy", "verifier/p_yes_mean"):
        assert np.isfinite(logged[key]), key
    assert 0 <= logged["verifier/accuracy"] <= 1


def test_the_verifier_trains_the_verdict_and_leaves_a_run_without_it_unchanged(tmp_path):
    tok = printable_tokenizer()
    runs = {}
    for coef in (None, 1.0):
        model = qwen2(len(tok))
        args = v05_args(tmp_path / str(coef), verifier_coef=coef, max_steps=1)
        trainer = V05GRPOTrainer(model=model, reward_funcs=parity_reward, args=args, train_dataset=dataset(),
                                 processing_class=tok)
        trainer.train()
        runs[coef] = (trainer.state.log_history[0], model.lm_head.weight.detach().clone())
    assert "verifier/loss" not in runs[None][0] and "verifier/loss" in runs[1.0][0]
    assert runs[None][0]["loss"] != runs[1.0][0]["loss"]  # same seed, same rollouts, one more loss term
    assert not torch.equal(runs[None][1], runs[1.0][1])


@pytest.mark.slow
def test_smollm2_takes_a_step_with_the_verifier(tmp_path):
    from datasets import Dataset

    from v05.pretrained import load_smollm2
    from v05.tasks.math_reward import math_reward

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        model, tokenizer = load_smollm2()
        assert verdict_tokens(tokenizer)[0] == ""  # BPE: 'Yes' and 'No' are single tokens
        data = Dataset.from_dict({"prompt": [[{"role": "user", "content": f"What is {a} + {b}? Answer in \\boxed{{}}."}]
                                             for a, b in [(2, 3), (4, 4)]], "answer": ["5", "8"]})
        args = V05Config(output_dir=str(tmp_path), use_cpu=True, bf16=False, gradient_checkpointing=False,
                         per_device_train_batch_size=4, num_generations=2, max_completion_length=8, max_steps=1,
                         learning_rate=1e-5, report_to="none", save_strategy="no", logging_steps=1, seed=0,
                         disable_tqdm=True, estimator="grpo", verifier_coef=1.0)
        trainer = V05GRPOTrainer(model=model, reward_funcs=lambda completions, answer, **kw: math_reward(
            [c[0]["content"] for c in completions], answer).tolist(), args=args, train_dataset=data,
            processing_class=tokenizer)
        trainer.train()
    finally:
        torch.set_num_threads(threads)
    logged = trainer.state.log_history[0]
    assert np.isfinite(logged["loss"]) and np.isfinite(logged["verifier/loss"]) and 0 < logged["verifier/p_yes_mean"] < 1
