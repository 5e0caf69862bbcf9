"""The policies ``v05 eval`` can sample from and ask for a verdict: a CPU-engine checkpoint, or a chat
language model (a transformers model folder, a GGUF file, or ``smollm2``, the SmolLM2-135M-Instruct the
project ships offline).

Each policy answers the same three questions: which grader fits its answers (:mod:`v05.evaluate.grading`),
``sample(problems, n, ...)`` (``n`` solutions per problem, a :class:`Samples`), and ``verify(problems,
samples, ...)`` (its own P(Yes) for every solution, or None when it has no verifier). :func:`load_policy` picks
the kind from the path and fails, naming the path, on anything it cannot load, before any sampling.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from v05.rl.checkpoint import CheckpointError, load_checkpoint, read_checkpoint
from v05.rl.config import TaskConfig, TrainConfig
from v05.rl.policy import Policy
from v05.rl.prompts import PromptSet
from v05.rl.sampler import Sampler
from v05.rl.task import decode_responses, encode_prompts
from v05.rl.verifier import score_rollouts
from v05.tasks.math_reward import MathProblem

SMOLLM2 = "smollm2"
"""``--policy`` value naming the shipped SmolLM2-135M-Instruct (``v05.pretrained.load_smollm2``)."""
INSTRUCTION = "\nPlease reason step by step, and put your final answer within \\boxed{}."
"""Appended to every problem a chat model is asked (the usual math-evaluation instruction)."""
Progress = Callable[[int], None]
"""Called with the number of problems (or solutions) done so far."""


@dataclass(frozen=True)
class Samples:
    """``n`` sampled solutions of each of P problems: texts ``(P, n)`` and what the policy needs to verify them."""

    text: list[list[str]]
    tokens: tuple | None = None
    """Engine: (prompts (P*n, T_prompt), responses (P*n, T), mask (P*n, T)) in problem-major order."""


class EnginePolicy:
    """A CPU-engine checkpoint (a run folder, or one ``checkpoints/step_NNNNNN`` folder of it), verified on load.

    It answers the built-in task only (its vocabulary is the task's characters); it has a verifier when it was
    trained with ``verifier.enabled``.
    """

    kind = "engine"
    grader = "exact"

    def __init__(self, folder: Path):
        tensors, state = _read_engine_checkpoint(folder)
        self.name = str(folder)
        self.config = TrainConfig.from_dict(state.get("config") or {}, source=f"checkpoint {folder}")
        self.step = int(state["step"])
        self.policy = Policy(self.config.policy, vocab_size=self.config.verifier.vocab_size)
        try:
            self.policy.load_state_dict({k[len("policy."):]: v for k, v in tensors.items() if k.startswith("policy.")})
        except RuntimeError as e:
            raise ValueError(f"checkpoint {folder}: its weights do not fit its config ({str(e).splitlines()[0]})") from None
        self.policy.eval()

    @property
    def has_verifier(self) -> bool:
        return self.config.verifier.enabled

    @property
    def task(self) -> TaskConfig:
        """The task the checkpoint was trained on (its held-out set is ``--problems builtin``)."""
        return self.config.task

    def sample(self, problems: list[MathProblem], n: int, *, seed: int, temperature: float | None = None,
               progress: Progress | None = None, chunk: int = 32, **_) -> Samples:
        """``n`` responses to each problem, ``chunk`` problems per generation call (temperature: the run's)."""
        generator = torch.Generator().manual_seed(seed)
        temperature = self.config.temperature if temperature is None else temperature
        parts = []
        for start in range(0, len(problems), chunk):
            batch = problems[start : start + chunk]
            tokens = torch.from_numpy(encode_prompts([p.prompt for p in batch]))  # (b, T_prompt)
            prompts = PromptSet([p.prompt for p in batch], tokens, [p.answer for p in batch], np.arange(len(batch)))
            responses, mask, _ = Sampler(self.policy, prompts, generator, temperature).draw(
                np.arange(len(batch)), np.full(len(batch), n))  # (b*n, T)
            parts.append((tokens.repeat_interleave(n, dim=0), responses, mask))
            if progress is not None:
                progress(start + len(batch))
        prompts, responses, mask = (torch.cat([p[i] for p in parts]) for i in range(3))
        text = decode_responses(responses.numpy())
        return Samples([text[i * n : (i + 1) * n] for i in range(len(problems))], (prompts, responses, mask))

    def verify(self, problems: list[MathProblem], samples: Samples, progress: Progress | None = None, **_):
        """P(Yes) of every sample, shape (P, n), or None without a verifier."""
        if not self.has_verifier:
            return None
        score = score_rollouts(self.policy, *samples.tokens)
        if progress is not None:
            progress(len(score))
        return score.reshape(len(problems), -1)


class ChatPolicy:
    """A chat language model from transformers: sampled with its chat template, verified with RL^V's prompt
    (:mod:`v05.tasks.verifier_chat`). Any such model can give a verdict; one not trained for it is a zero-shot
    judge."""

    kind = "transformers"
    grader = "math"
    has_verifier = True

    def __init__(self, model, tokenizer, name: str):
        self.model, self.tokenizer, self.name = model.eval(), tokenizer, name
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.convert_ids_to_tokens(_eos_id(model, tokenizer))

    @classmethod
    def load(cls, spec: str) -> "ChatPolicy":
        """``smollm2``, a transformers model folder (``config.json``) or a ``.gguf`` file."""
        from transformers import AutoModelForCausalLM, AutoTokenizer

        if spec == SMOLLM2:
            from v05.pretrained import load_smollm2

            model, tokenizer = load_smollm2()
            return cls(model, tokenizer, SMOLLM2)
        path = Path(spec)
        if path.suffix == ".gguf":
            model = AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name, dtype=torch.float32)
            return cls(model, AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name), str(path))
        model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
        return cls(model, AutoTokenizer.from_pretrained(path), str(path))

    @torch.no_grad()
    def sample(self, problems: list[MathProblem], n: int, *, seed: int, temperature: float | None = None,
               max_new_tokens: int = 512, batch_size: int = 16, progress: Progress | None = None) -> Samples:
        """``n`` solutions per problem (temperature default 1.0), ``batch_size // n`` problems per generate call."""
        torch.manual_seed(seed)
        tok = self.tokenizer
        side, tok.padding_side = tok.padding_side, "left"
        per_call = max(1, batch_size // n)
        out: list[list[str]] = []
        try:
            for start in range(0, len(problems), per_call):
                texts = [tok.apply_chat_template([{"role": "user", "content": p.prompt + INSTRUCTION}], tokenize=False,
                                                 add_generation_prompt=True) for p in problems[start : start + per_call]]
                enc = tok(texts, return_tensors="pt", padding=True, add_special_tokens=False).to(self.model.device)
                ids = self.model.generate(**enc, do_sample=True, temperature=1.0 if temperature is None else temperature,
                                          top_p=1.0, top_k=0, max_new_tokens=max_new_tokens, num_return_sequences=n,
                                          pad_token_id=tok.pad_token_id)  # (b*n, L + new)
                decoded = tok.batch_decode(ids[:, enc["input_ids"].shape[1]:], skip_special_tokens=True)
                out += [decoded[i * n : (i + 1) * n] for i in range(len(texts))]
                if progress is not None:
                    progress(len(out))
        finally:
            tok.padding_side = side
        return Samples(out)

    def verify(self, problems: list[MathProblem], samples: Samples, progress: Progress | None = None,
               batch_size: int = 8, **_) -> np.ndarray:
        """The model's P(Yes) for every solution, shape (P, n)."""
        from v05.tasks.verifier_chat import score_solutions

        n = len(samples.text[0])
        flat_problems = [p.prompt for p in problems for _ in range(n)]
        flat = [s for row in samples.text for s in row]
        score = score_solutions(self.model, self.tokenizer, flat_problems, flat, batch_size=batch_size, progress=progress)
        return score.reshape(len(problems), n)


def load_policy(spec: str) -> EnginePolicy | ChatPolicy:
    """The policy ``spec`` names: an engine run or checkpoint folder, a transformers folder, a GGUF file or
    ``smollm2``.

    Raises
    ------
    FileNotFoundError
        The path does not exist.
    ValueError
        The path is none of those kinds, or its checkpoint is corrupt (the message names it).
    """
    if spec == SMOLLM2:
        return ChatPolicy.load(spec)
    path = Path(spec)
    if not path.exists():
        raise FileNotFoundError(f"--policy {spec}: no such file or folder (expected an engine run folder, a "
                                f"transformers model folder, a .gguf file or '{SMOLLM2}')")
    if path.is_dir() and ((path / "checkpoints").is_dir() or (path / "state.json").is_file()):
        return EnginePolicy(path)
    if (path.is_dir() and (path / "config.json").is_file()) or (path.is_file() and path.suffix == ".gguf"):
        return ChatPolicy.load(spec)
    raise ValueError(f"--policy {spec}: not an engine run folder (with checkpoints/), a checkpoint folder "
                     "(with state.json), a transformers model folder (with config.json) or a .gguf file")


def _read_engine_checkpoint(folder: Path) -> tuple[dict, dict]:
    """(tensors, state) of the newest intact checkpoint of a run folder, or of one checkpoint folder."""
    try:
        if (folder / "state.json").is_file():
            return read_checkpoint(folder)
        checkpoint = load_checkpoint(folder)
    except CheckpointError as e:
        raise ValueError(str(e)) from None
    if checkpoint is None:
        raise ValueError(f"--policy {folder}: the run has no checkpoint yet")
    return checkpoint.tensors, checkpoint.state


def _eos_id(model, tokenizer) -> int:
    eos = model.generation_config.eos_token_id
    eos = eos[0] if isinstance(eos, (list, tuple)) else eos
    return tokenizer.eos_token_id if eos is None else int(eos)
