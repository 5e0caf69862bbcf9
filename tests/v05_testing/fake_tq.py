"""An in-memory stand-in for the TransferQueue calls verl's V1 trainer and replay buffer make (``kv_list``,
``kv_batch_get``, ``kv_batch_put``, ``kv_clear``), so their logic runs on CPU without Ray. Batches it returns
are built with verl's own ``list_of_dict_to_tensordict``, as the agent loop stores them."""

from __future__ import annotations

from collections import defaultdict
from typing import Callable

import pytest

pytest.importorskip("verl", reason="needs the v05[verl] extra (verl[verl-core]==0.9.1)")
import transfer_queue
from tensordict import TensorDict
from transfer_queue import KVBatchMeta
from verl.utils.tensordict_utils import list_of_dict_to_tensordict


class FakeTransferQueue:
    def __init__(self):
        self.tags: dict[str, dict[str, dict]] = defaultdict(dict)
        self.fields: dict[str, dict[str, dict]] = defaultdict(dict)
        self.on_list: Callable[[], None] | None = None
        """Called on every kv_list: lets a fake rollout advance one tick per poll."""

    def install(self, monkeypatch) -> "FakeTransferQueue":
        for name in ("kv_list", "kv_batch_get", "kv_batch_put", "kv_clear"):
            monkeypatch.setattr(transfer_queue, name, getattr(self, name))
        return self

    def kv_list(self, partition_id: str | None = None):
        if self.on_list is not None:
            self.on_list()
        data = {p: {k: dict(t) for k, t in tags.items()} for p, tags in self.tags.items()}
        return data if partition_id is None else {partition_id: data.get(partition_id, {})}

    def kv_batch_put(self, keys, partition_id, tags=None, fields=None):
        for i, key in enumerate(keys):
            self.tags[partition_id].setdefault(key, {}).update(tags[i] if tags is not None else {})
            if fields is not None:
                row = fields[i] if isinstance(fields, list) else {name: fields[name][i] for name in fields.keys()}
                self.fields[partition_id].setdefault(key, {}).update(row)
        return KVBatchMeta(partition_id=partition_id, keys=list(keys), tags=[self.tags[partition_id][k] for k in keys])

    def kv_batch_get(self, keys, partition_id, select_fields=None) -> TensorDict:
        rows = []
        for key in keys:
            stored = self.fields[partition_id][key]
            # absent fields are left out, as verl's trainer expects ("rollout_log_probs" in data.batch)
            rows.append({f: stored[f] for f in (select_fields or stored) if f in stored})
        return list_of_dict_to_tensordict(rows)

    def kv_clear(self, keys, partition_id):
        for key in keys:
            self.tags[partition_id].pop(key, None)
            self.fields[partition_id].pop(key, None)
