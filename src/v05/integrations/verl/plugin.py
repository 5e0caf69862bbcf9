"""verl plug-in entry point: ``import verl`` imports this module in every process (the ``verl.plugins`` entry
point ``v05`` in pyproject.toml, or ``VERL_USE_EXTERNAL_MODULES=v05.integrations.verl.plugin``), which registers
our advantage estimators and the ``v05_sync`` trainer. Importing it again changes nothing.

verl swallows a plug-in's import errors (it logs them at debug level), so a failure here is also logged as an
error under the ``v05`` logger before it propagates: an estimator that silently went missing would only
surface later as verl's "Unknown advantage estimator". A verl that lacks or changed a member the plug-in relies
on (:mod:`v05.integrations.verl.compat`) is logged as an error here too; the ``v05_sync`` trainer and the launcher
refuse to start on it.
"""

from __future__ import annotations

import logging

try:
    from v05.integrations.verl.estimator import register_estimators

    ESTIMATORS = register_estimators()
    """The verl names registered (``v05``, ``v05_eb``, ``v05_grpo``...)."""
    from v05.integrations.verl import trainer  # noqa: F401  (registers trainer.v1.trainer_mode=v05_sync)
    from v05.integrations.verl.compat import incompatibility

    if (problem := incompatibility()) is not None:
        logging.getLogger("v05").error(problem)
except Exception:
    logging.getLogger("v05").exception("the v05 verl plug-in failed to load; its estimators and trainer are missing")
    raise
