"""``V05SyncTrainer``: verl's V1 sync trainer with V0.5's prior, rollout counts and grouping, registered as
``trainer.v1.trainer_mode=v05_sync``.

What it changes, and nothing else:

- **Checks first.** The installed verl is checked for the members this class relies on
  (:mod:`~v05.integrations.verl.compat`), the ``+v05`` group when the trainer is built (before any worker starts) and
  the dataset columns it names when the dataloader is (before the models load).
- **Submission.** Every prompt gets ``v05_parent_uid`` (its own uid) and, by ``v05.rollouts.mode``, a per-prompt
  ``__rollout_n__``: a dataset column (static) or the planner's first round (osla). With osla the rows are
  kept for the top-ups, which the ``V05ReplayBuffer`` sampler asks for through :meth:`_submit_follow_ups`.
- **Advantage.** With one of our estimators, :meth:`_compute_advantage` also reads the prior (and its variance)
  and ``v05_parent_uid`` from TransferQueue, groups rollouts by parent, leaves verl's padding rows out, scores
  each session's final output and calls the estimator registered in verl. Under Reinforce-Ada the sampler has
  left all but ``n`` rollouts a prompt out of the batch; their rewards join their prompt's pool for the estimator
  (and the history prior's outcomes) only. verl's own estimators run unchanged.
- **History prior.** With ``+v05.prior_source=history`` the prior is not a column: each submitted batch gets
  its prompts' priors from the run's outcome history (:mod:`~v05.integrations.verl.history`), written into the
  batch under ``v05.prior_key`` (and the variance under :data:`PRIOR_VAR_FIELD`) before the planner and the
  estimator read them; the trained outcomes join the history, which is saved in every checkpoint folder
  (``v05_state.json``) and restored on resume.

verl 0.9.1 keys sync behaviour on the literal mode name ``"sync"`` (``trainer_base.py``: replay-buffer choice,
dataloader fetch size, checkpointing of TransferQueue); :attr:`trainer_mode` therefore reads ``"sync"``.
"""

from __future__ import annotations

import os

import numpy as np
import torch
import transfer_queue as tq
from tensordict import TensorDict
from verl.protocol import DataProto
from verl.trainer.ppo.core_algos import get_adv_estimator_fn
from verl.trainer.ppo.rollout_corr_helper import compute_rollout_correction_and_add_to_batch
from verl.trainer.ppo.v1.trainer_base import register_trainer
from verl.trainer.ppo.v1.trainer_sync import PPOTrainerSync
from verl.utils import tensordict_utils as tu
from verl.workers.utils.padding import response_to_nested

from v05._validation import check_in_range
from v05.baselines import RewardScale, get_estimator
from v05.integrations.state import read_state_or_older, write_state
from v05.integrations.verl.compat import check_verl
from v05.integrations.verl.config import TRAINER_MODE, V05VerlConfig, check_run, check_static_counts
from v05.integrations.verl.estimator import our_name
from v05.integrations.verl.history import RunHistory
from v05.integrations.verl.keys import final_outputs
from v05.integrations.verl.metrics import record
from v05.integrations.verl.topup import FollowUp

PARENT_KEY = "v05_parent_uid"
"""Field carried by every rollout: the uid of the first-round prompt whose group it belongs to."""
PRIOR_VAR_FIELD = "v05_prior_var"
"""Field carrying the history prior's variance to every rollout (``+v05.prior_source=history``)."""
STATE_FORMAT = "v05.verl/1"
"""Format of the trainer's ``v05_state.json`` in a checkpoint folder (:mod:`v05.integrations.state`)."""


@register_trainer(TRAINER_MODE)
class V05SyncTrainer(PPOTrainerSync):
    """verl's ``PPOTrainerSync`` with V0.5's prior, per-prompt rollout counts and top-ups (module docstring)."""

    def __init__(self, config):
        check_verl()  # the verl members this class relies on (ImportError naming the versions)
        self.v05: V05VerlConfig = check_run(config)
        self.estimator = our_name(str(config.algorithm.adv_estimator))
        self._kept_rows: dict[str, tuple[TensorDict, int]] = {}
        self.run_history = RunHistory() if self.v05.prior_source == "history" and self._needs_prior else None
        """The run's outcome history (``+v05.prior_source=history``), else None."""
        super().__init__(config)

    @property
    def trainer_mode(self) -> str:
        """verl's sync semantics (the registered name is ``v05_sync``)."""
        return "sync"

    @trainer_mode.setter
    def trainer_mode(self, value: str) -> None:  # PPOTrainer.__init__ assigns the configured name
        self.registered_mode = value

    # -- set-up -----------------------------------------------------------------------------------------

    def _build_replay_buffer(self):
        buffer = super()._build_replay_buffer()
        if self.v05.rollouts.mode == "osla":
            from v05.integrations.verl.sampler import V05ReplayBuffer

            if not isinstance(buffer, V05ReplayBuffer):
                raise TypeError(f"v05.rollouts.mode=osla needs the V05ReplayBuffer sampler; got {type(buffer).__name__}")
            buffer.bind(self.v05.rollouts, self.v05.scale, self._submit_follow_ups)
        return buffer

    def _init_dataloader(self):
        super()._init_dataloader()
        table = self.train_dataset.dataframe
        for key in self._dataset_columns():
            if key not in table.column_names:
                raise ValueError(f"the training data has no column {key!r} (named by the +v05 group); its columns: "
                                 f"{sorted(table.column_names)}. examples/verl/prepare_data.py writes prior_value")
        self._row_fields(table.select_columns(self._dataset_columns())[:], where="training data column")

    @property
    def _needs_prior(self) -> bool:
        """True when the estimator fuses a prior or the planner plans from one."""
        uses_prior = self.estimator is not None and get_estimator(self.estimator).uses_prior
        return uses_prior or self.v05.rollouts.mode == "osla"

    @property
    def _prior_var_field(self) -> str | None:
        """The field the estimator reads the prior's variance from, if any."""
        if self.run_history is not None:
            return PRIOR_VAR_FIELD
        return self.v05.prior_var_key

    def _dataset_columns(self) -> list[str]:
        keys = [self.v05.prior_key] if self._needs_prior and self.v05.prior_source == "column" else []
        keys += [self.v05.prior_var_key] if self.v05.prior_var_key and self.estimator is not None else []
        keys += [self.v05.rollouts.n_key] if self.v05.rollouts.mode == "static" else []
        return keys

    def _row_fields(self, rows, where: str) -> dict[str, np.ndarray]:
        """The +v05 columns of ``rows`` (a dict of columns or a TensorDict), checked; errors name the row."""
        out = {}
        for key in self._dataset_columns():
            values = list(rows[key])
            if key == self.v05.rollouts.n_key and self.v05.rollouts.mode == "static":
                out[key] = check_static_counts(values, f"{where} {key!r}")
                continue
            array = np.asarray(values, dtype=np.float64)
            hi = 1.0 if key == self.v05.prior_key else np.finfo(np.float64).max
            check_in_range(array, f"{where} {key!r}", 0.0, hi)
            out[key] = array
        return out

    # -- submission -------------------------------------------------------------------------------------

    def _submit_batch_to_rollout(self, batch: TensorDict) -> int:
        """Tag each prompt with its own uid as parent and its rollout count, then hand it to verl."""
        uids = [str(uid) for uid in batch["uid"]]
        tu.assign_non_tensor_stack(batch, PARENT_KEY, uids)
        fields = self._row_fields(batch, where="batch column")
        if self.run_history is not None:
            fields[self.v05.prior_key] = self._put_history_prior(batch, uids)
        mode = self.v05.rollouts.mode
        if mode == "static":
            batch["__rollout_n__"] = torch.as_tensor(fields[self.v05.rollouts.n_key])
        elif mode == "osla":
            prior_var = fields.get(self.v05.prior_var_key) if self.v05.prior_var_key else None
            first = self.replay_buffer.begin(uids, fields[self.v05.prior_key], prior_var)
            batch["__rollout_n__"] = torch.as_tensor([first[uid] for uid in uids])
            self._kept_rows.update({uid: (batch, i) for i, uid in enumerate(uids)})
        return super()._submit_batch_to_rollout(batch)

    def _put_history_prior(self, batch: TensorDict, uids: list[str]) -> np.ndarray:
        """Write each prompt's prior from the run's history into ``batch`` (mean under ``v05.prior_key``,
        variance under :data:`PRIOR_VAR_FIELD`); returns the means."""
        prior = self.run_history.submit(self.global_steps, uids, list(batch["raw_prompt"]))
        tu.assign_non_tensor_stack(batch, self.v05.prior_key, prior.mean.tolist())
        tu.assign_non_tensor_stack(batch, PRIOR_VAR_FIELD, prior.var.tolist())
        return prior.mean

    def _submit_follow_ups(self, follow_ups: list[FollowUp]) -> None:
        """Send top-up requests: the parent's prompt row under a new uid, tagged with the parent, n rollouts."""
        rows = []
        for f in follow_ups:
            source, i = self._kept_rows[f.parent_uid]
            row = tu.index_select_tensor_dict(source, [i])
            tu.assign_non_tensor_stack(row, "uid", [f.uid])
            tu.assign_non_tensor_stack(row, PARENT_KEY, [f.parent_uid])
            row["__rollout_n__"] = torch.as_tensor([f.n])
            rows.append(row)
        batch = rows[0] if len(rows) == 1 else tu.concat_tensordict(rows)
        tu.assign_non_tensor_data(batch, "global_steps", self.global_steps)
        super()._submit_batch_to_rollout(batch)

    def on_step_end(self):
        super().on_step_end()
        self._kept_rows.clear()  # every group of the step has been trained on

    # -- checkpoint -------------------------------------------------------------------------------------

    def _save_checkpoint(self):
        """verl's checkpoint, with the run's outcome history written first into the same ``global_step_<n>``
        folder (so a checkpoint verl marks as the latest always has it)."""
        if self.run_history is not None:
            folder = os.path.join(self.config.trainer.default_local_dir, f"global_step_{self.global_steps}")
            os.makedirs(folder, exist_ok=True)
            write_state(folder, self.run_history.state_dict(), STATE_FORMAT)
        super()._save_checkpoint()

    def _load_checkpoint(self):
        """verl's resume, then the outcome history of the checkpoint resumed (a missing or corrupt file is named
        in a warning and the newest older intact one used; none: the history restarts empty)."""
        super()._load_checkpoint()
        if self.run_history is None or self.global_steps == 0:
            return
        trainer = self.config.trainer
        folder = trainer.resume_from_path if trainer.resume_mode == "resume_path" else \
            os.path.join(trainer.default_local_dir, f"global_step_{self.global_steps}")
        state = read_state_or_older(folder, STATE_FORMAT)
        if state is not None:
            self.run_history.load_state_dict(state)

    # -- advantage --------------------------------------------------------------------------------------

    def _compute_advantage(self, batch, metrics: dict):
        """Our estimators: prior and parent from TransferQueue, then verl's own steps (verl 0.9.1
        ``trainer_base.py:1743``) around the estimator call. verl's estimators: unchanged."""
        if self.estimator is None:
            return super()._compute_advantage(batch, metrics)
        fields = ["uid", "response_mask", "rm_scores", "rollout_log_probs", "old_log_probs", "ref_log_prob", "values"]
        data = tq.kv_batch_get(keys=batch.keys, partition_id=batch.partition_id, select_fields=fields)
        response_mask = data["response_mask"]
        data = DataProto(batch=data.to_padded_tensor())
        data.batch["token_level_scores"] = data.batch["token_level_rewards"] = data.batch["rm_scores"]
        data.non_tensor_batch["uid"] = np.array(data.batch.pop("uid").tolist(), dtype=object)
        data, correction = self._rollout_correction(data, metrics)
        data.batch["advantages"] = data.batch["returns"] = self._advantages(batch, data, metrics)
        out = ["advantages", "returns"]
        if correction:
            out += ["response_mask"] + (["rollout_is_weights"] if "rollout_is_weights" in data.batch else [])
        output = TensorDict({f: response_to_nested(data.batch[f], response_mask) for f in out}, batch_size=len(batch))
        return tq.kv_batch_put(keys=batch.keys, partition_id=batch.partition_id, fields=output)

    def _rollout_correction(self, data: DataProto, metrics: dict) -> tuple[DataProto, bool]:
        """verl's decoupled-mode rollout correction (IS weights, rejection), exactly as its trainer applies it."""
        corr = self.config.algorithm.get("rollout_correction", None)
        if corr is None or "rollout_log_probs" not in data.batch or corr.get("bypass_mode", False):
            return data, False
        data, is_metrics = compute_rollout_correction_and_add_to_batch(data, corr)
        metrics.update(is_metrics)
        return data, True

    def _advantages(self, batch, data: DataProto, metrics: dict) -> torch.Tensor:
        """Advantages (bs, T): the estimator over each session's final output of the real rows, grouped by
        parent uid, broadcast to the session's outputs; verl's padding rows get 0."""
        real = np.array([not tag.get("is_padding", False) for tag in batch.tags])
        keys = [key for key, keep in zip(batch.keys, real) if keep]
        rows = np.flatnonzero(real)
        final, session = final_outputs(keys)
        picked = rows[final]  # (n_sessions,) batch rows scored
        extra = self._advantage_fields(batch, picked)
        scores = data.batch["token_level_rewards"][torch.as_tensor(picked)].sum(-1, keepdim=True)  # (n_sessions, 1)
        if self.v05.rollouts.mode == "osla":  # Reinforce-Ada: each prompt's whole pool, the batch's sessions first
            extra, scores = with_left_out(extra, scores, self.replay_buffer.pop_left_out())
        prior, prior_var = extra.get(self.v05.prior_key), extra.get(self._prior_var_field)
        if self.run_history is not None:  # left-out rollouts: no request uid, so never counted as a first round
            unit = RewardScale.parse(self.v05.scale).to_unit(scores[:, 0].detach().to("cpu", torch.float64).numpy())
            requests = np.concatenate([data.non_tensor_batch["uid"][picked],
                                       np.full(len(scores) - len(picked), None, dtype=object)])
            prior, prior_var = self.run_history.observe(self.global_steps, extra[PARENT_KEY], requests, unit,
                                                        prior, prior_var)
        fn = get_adv_estimator_fn(str(self.config.algorithm.adv_estimator))
        scalar, _ = fn(scores, torch.ones_like(scores), index=extra[PARENT_KEY], config=self.config.algorithm,
                       prior=prior, prior_var=prior_var, scale=self.v05.scale, options=self.v05.options)
        scalar = scalar[:len(picked)]  # the batch's sessions (the left-out rollouts only shaped the baselines)
        mask = data.batch["response_mask"]
        per_row = torch.zeros(len(real), dtype=scores.dtype)
        per_row[torch.as_tensor(rows)] = scalar[:, 0][torch.as_tensor(session)].to(per_row.dtype)
        if prior is not None:
            record(metrics, {"v05/prior/mean": np.mean(prior)})
        return per_row.unsqueeze(-1).to(mask.device) * mask

    def _advantage_fields(self, batch, rows: np.ndarray) -> dict[str, np.ndarray]:
        """Parent uid, prior and prior variance of the given batch rows, read from TransferQueue."""
        uses_prior = get_estimator(self.estimator).uses_prior
        names = [PARENT_KEY] + ([self.v05.prior_key] if uses_prior else [])
        names += [self._prior_var_field] if self._prior_var_field and uses_prior else []
        keys = [batch.keys[i] for i in rows]
        data = tq.kv_batch_get(keys=keys, partition_id=batch.partition_id, select_fields=names)
        out = {PARENT_KEY: np.array([str(v) for v in data[PARENT_KEY]], dtype=object)}
        for name in names[1:]:
            out[name] = np.asarray(list(data[name]), dtype=np.float64)
        return out


def with_left_out(fields: dict[str, np.ndarray], scores: torch.Tensor,
                  left_out: list[tuple[str, float]]) -> tuple[dict[str, np.ndarray], torch.Tensor]:
    """The estimator's inputs for the batch's sessions (``fields``: parent uid, prior... one entry each; ``scores``
    (n, 1)) followed by the rollouts left out of the batch, ``(root uid, reward)``, each with its root's fields:
    each prompt's whole pool, the batch's sessions first.

    Examples
    --------
    >>> fields, scores = with_left_out({PARENT_KEY: np.array(["a", "b"]), "prior": np.array([0.2, 0.9])},
    ...                                torch.tensor([[1.0], [0.0]]), [("b", 1.0)])
    >>> fields[PARENT_KEY].tolist(), fields["prior"].tolist(), scores[:, 0].tolist()
    (['a', 'b', 'b'], [0.2, 0.9, 0.9], [1.0, 0.0, 1.0])
    """
    if not left_out:
        return fields, scores
    first = {parent: i for i, parent in reversed(list(enumerate(fields[PARENT_KEY])))}
    unknown = sorted({root for root, _ in left_out} - set(first))
    if unknown:
        raise RuntimeError(f"rollouts of {unknown[:3]} were left out of the update, but none of theirs is in the batch")
    rows = np.array([first[root] for root, _ in left_out])
    extended = {key: np.concatenate([value, value[rows]]) for key, value in fields.items()}
    rewards = torch.as_tensor([[reward] for _, reward in left_out], dtype=scores.dtype, device=scores.device)
    return extended, torch.cat([scores, rewards])
