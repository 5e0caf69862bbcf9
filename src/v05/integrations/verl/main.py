"""``python -m v05.integrations.verl.main [hydra overrides]``: verl's PPO launcher (``verl.trainer.main_ppo``)
with the ``+v05`` group checked in the driver, before Ray starts or any model loads.

It composes the same config (verl's ``ppo_trainer.yaml``), so every verl override works as with
``python -m verl.trainer.main_ppo``; a bad ``+v05`` value ends the run with one line naming the key.
"""

from __future__ import annotations

import os
import sys

import hydra
import verl
from verl.trainer import main_ppo

from v05.baselines import get_estimator
from v05.integrations.verl.config import TRAINER_MODE, check_run
from v05.integrations.verl.estimator import our_name

CONFIG_DIR = os.path.join(os.path.dirname(verl.__file__), "trainer", "config")


def check_launch(config) -> None:
    """Everything :func:`check_run` checks, plus: V0.5's prior-fused estimators need the ``v05_sync`` trainer
    (verl's own trainer never passes a prior to an estimator)."""
    check_run(config)
    name = our_name(str(config.algorithm.adv_estimator))
    mode = str(config.trainer.v1.trainer_mode)
    if name is not None and get_estimator(name).uses_prior and mode != TRAINER_MODE:
        raise ValueError(f"algorithm.adv_estimator={config.algorithm.adv_estimator} fuses a prior, which only the "
                         f"{TRAINER_MODE} trainer passes: set trainer.v1.trainer_mode={TRAINER_MODE} (got {mode!r})")


@hydra.main(config_path=CONFIG_DIR, config_name="ppo_trainer", version_base=None)
def main(config) -> None:
    """Check the +v05 group, then run verl's own ``main_ppo.main`` body."""
    try:
        check_launch(config)
    except (TypeError, ValueError) as e:  # a user error: one line, exit code 2, as the v05 command does
        print(f"error: {' '.join(str(e).split())}", file=sys.stderr)
        sys.exit(2)
    main_ppo.main.__wrapped__(config)


if __name__ == "__main__":
    main()
