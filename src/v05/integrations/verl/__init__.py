"""V0.5 as a verl 0.9.1 plug-in: advantage estimators, the ``v05_sync`` V1 trainer and the top-up sampler.

``import verl`` loads :mod:`v05.integrations.verl.plugin` through the ``verl.plugins`` entry point (or
``VERL_USE_EXTERNAL_MODULES=v05.integrations.verl.plugin``), which registers everything. Modules:

- ``estimator``: our estimators under verl's advantage-estimator signature (``v05``, ``v05_eb``, ``v05_grpo``...).
- ``config``: the ``+v05.*`` config group, validated before training starts.
- ``topup``: which prompts get follow-up rollouts (pure; driven by :class:`v05.budget.RolloutPlan`).
- ``sampler``: the replay buffer that runs those decisions against TransferQueue.
- ``trainer``: ``V05SyncTrainer``, registered as ``trainer.v1.trainer_mode=v05_sync``.
- ``history``: the run's outcome history behind ``+v05.prior_source=history`` (pure; the trainer feeds it).
- ``metrics``: the one writer of V0.5's values into verl's step metrics (every name it logs).
- ``compat``: the verl members the plug-in relies on, checked against the installed verl.
- ``main``: ``python -m v05.integrations.verl.main``, verl's launcher with V0.5's checks before Ray starts
  (``--dry-run``, ``--help``).

This package imports verl only in the modules that need it; the user guide is ``docs/verl.md``.
"""
