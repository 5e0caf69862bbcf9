"""Everything a training run changes as it goes, in one object that a checkpoint saves and restores exactly."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from v05.rl.checkpoint import optimizer_from_tensors, optimizer_to_tensors
from v05.rl.config import TrainConfig
from v05.rl.policy import Policy
from v05.rl.prompts import PromptStream
from v05.value.prior import OutcomeHistory


@dataclass
class TrainState:
    """The mutable state of a run: restoring it from a checkpoint continues the run as if it never stopped."""

    policy: Policy
    optimizer: torch.optim.Optimizer
    generator: torch.Generator
    """The RL phase's torch randomness: sampling and minibatch order."""
    stream: PromptStream
    """The prompt order (it holds the numpy generator that shuffles each epoch)."""
    history: OutcomeHistory
    """Every (prompt, observed pass rate) so far: the value model's context."""
    step: int = 0
    """Training steps done."""
    rollouts: int = 0
    """Rollouts spent so far (dropped ones included)."""
    next_eval: int = 0
    """Evaluate once ``rollouts`` reaches this."""

    @classmethod
    def start(cls, cfg: TrainConfig, policy: Policy) -> "TrainState":
        """The state before the first step: Adam on ``policy``, generators seeded with ``cfg.seed``."""
        return cls(policy, torch.optim.Adam(policy.parameters(), lr=cfg.optim.lr), torch.Generator().manual_seed(cfg.seed),
                   PromptStream(cfg.task.n_train, np.random.default_rng(cfg.seed), recur=cfg.task.stream == "epochs"),
                   OutcomeHistory(),
                   next_eval=cfg.eval.every_rollouts)

    def state_dict(self) -> tuple[dict[str, torch.Tensor], dict]:
        """(tensors for safetensors, JSON-able rest): the two halves of a checkpoint."""
        opt_tensors, opt_meta = optimizer_to_tensors(self.optimizer)
        tensors = {**{f"policy.{k}": v for k, v in self.policy.state_dict().items()}, **opt_tensors,
                   "rng.torch": self.generator.get_state()}
        meta = {"step": self.step, "rollouts": self.rollouts, "next_eval": self.next_eval, "optimizer": opt_meta,
                "stream": self.stream.state_dict(), "history": self.history.state_dict()}
        return tensors, meta

    def load_state_dict(self, tensors: dict[str, torch.Tensor], meta: dict) -> None:
        """Continue from :meth:`state_dict`'s output."""
        self.policy.load_state_dict({k[len("policy."):]: v for k, v in tensors.items() if k.startswith("policy.")})
        optimizer_from_tensors(self.optimizer, tensors, meta["optimizer"])
        self.generator.set_state(tensors["rng.torch"])
        self.stream.load_state_dict(meta["stream"])
        self.history = OutcomeHistory.from_state_dict(meta["history"])
        self.step, self.rollouts, self.next_eval = int(meta["step"]), int(meta["rollouts"]), int(meta["next_eval"])
