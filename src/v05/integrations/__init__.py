"""Plug-ins for RL frameworks: ``v05.integrations.trl`` (a ``GRPOTrainer`` subclass) and ``v05.integrations.verl``.

Each is imported on its own (it imports its framework); both are thin translations onto ``v05.baselines``,
``v05.budget`` and ``v05.value``.
"""
