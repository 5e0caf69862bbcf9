"""RL^V in ``V05GRPOTrainer`` (``V05Config(verifier_coef=...)``): the policy also learns to judge its own
completions, J = J_RL + verifier_coef * J_verify.

For every completion of a generation batch the trainer builds, with the tokenizer's chat template, the
verification prompt (problem, the completion, "Is this solution correct? Answer Yes or No.";
:mod:`v05.tasks.verifier_chat`) and its label, the completion's reward (above the middle of the reward scale:
``Yes``). These ride in the batch as extra tensors, so TRL shuffles and splits them with the rest; the loss
path then adds the next-token loss of the label token on the same micro-batch. No extra generation.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from v05.tasks.verifier_chat import class_weights, encode_verification, p_yes, verdict_tokens, verification_loss

KEYS = ("v05_verify_ids", "v05_verify_mask", "v05_verify_label", "v05_verify_weight")
"""The batch entries the verifier adds (one row per completion)."""


@dataclass(frozen=True)
class TrlVerifier:
    """Builds the verification inputs of a generation batch and their loss on a micro-batch."""

    tokenizer: object
    class_balance: bool
    yes: int
    no: int

    @classmethod
    def build(cls, tokenizer, class_balance: bool) -> "TrlVerifier":
        """Raises ``ValueError`` when the tokenizer cannot tell ``Yes`` from ``No``."""
        _, yes, no = verdict_tokens(tokenizer)
        return cls(tokenizer, class_balance, yes, no)

    def inputs(self, problems: list[str], completion_ids: torch.Tensor, completion_mask: torch.Tensor,
               correct: np.ndarray) -> dict[str, torch.Tensor]:
        """The :data:`KEYS` tensors of this process's rows: ``problems`` (N,) texts, completions (N, T) with
        their mask, ``correct`` (N,) bool. Class weights (``class_balance``) are computed over these rows."""
        pad = self.tokenizer.pad_token_id
        ids = torch.where(completion_mask.bool(), completion_ids, torch.full_like(completion_ids, pad))
        solutions = self.tokenizer.batch_decode(ids.cpu(), skip_special_tokens=True)
        tokens, mask = encode_verification(self.tokenizer, problems, solutions)  # (N, L) each
        device = completion_ids.device
        weight = class_weights(np.asarray(correct, dtype=bool), self.class_balance)
        return {"v05_verify_ids": tokens.to(device), "v05_verify_mask": mask.to(device),
                "v05_verify_label": torch.as_tensor(np.asarray(correct, dtype=bool), device=device),
                "v05_verify_weight": torch.as_tensor(weight, dtype=torch.float32, device=device)}

    def loss(self, model, inputs: dict) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """J_verify on a micro-batch, and its unweighted loss, accuracy and mean P(Yes) (detached, for logs)."""
        logits = model(input_ids=inputs["v05_verify_ids"], attention_mask=inputs["v05_verify_mask"]).logits[:, -1]
        labels = inputs["v05_verify_label"]
        loss = verification_loss(logits, labels, inputs["v05_verify_weight"], self.yes, self.no)
        with torch.no_grad():
            score = p_yes(logits, self.yes, self.no)  # (b,)
            stats = {"verifier/loss": verification_loss(logits, labels, torch.ones_like(score), self.yes, self.no),
                     "verifier/accuracy": ((score > 0.5) == labels).float().mean(),
                     "verifier/p_yes_mean": score.mean()}
        return loss, stats
