"""V0.5 inside TRL: ``V05GRPOTrainer`` (a ``GRPOTrainer`` subclass) configured by ``V05Config`` (extra ``v05[trl]``).

    from v05.integrations.trl import V05Config, V05GRPOTrainer
    args = V05Config(output_dir="out", estimator="v05", k_max=16)     # k_init = num_generations
    trainer = V05GRPOTrainer(model=model, reward_funcs=reward, args=args, train_dataset=dataset)

``docs/trl.md`` has the settings, the metrics and the design of the top-ups.
"""

from v05.integrations.trl.config import V05Config
from v05.integrations.trl.internals import trl_mismatches
from v05.integrations.trl.trainer import StepRecord, V05GRPOTrainer

__all__ = ["StepRecord", "V05Config", "V05GRPOTrainer", "trl_mismatches"]
