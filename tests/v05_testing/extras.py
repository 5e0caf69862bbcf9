"""Run pytest as if only some of the project's extras were installed, to check that the other extra's tests
skip instead of failing at collection:

    python -m v05_testing.extras "v05[verl]" --collect-only -q src tests

The packages an install lacks are hidden (``None`` in ``sys.modules``: ``import`` fails and
``importlib.util.find_spec`` says absent) once pytest has loaded its plugins, before any conftest or test."""

import sys

import pytest

TRL_ONLY = ("trl",)
"""The top-level packages that ``v05[trl]`` brings and neither the base install nor ``v05[verl]`` does."""
VERL_ONLY = ("verl", "transfer_queue", "tensordict", "hydra", "omegaconf", "ray")
"""The same for ``v05[verl]`` (the ones our code and tests import)."""
MISSING = {"v05": TRL_ONLY + VERL_ONLY + ("datasets", "accelerate"), "v05[trl]": VERL_ONLY, "v05[verl]": TRL_ONLY}
"""What each install lacks, by its pip name."""
PLUGINS = {"hydra": "hydra_pytest"}
"""pytest plugins that a hidden package's distribution registers (absent with it, so not loaded)."""


class Hide:
    """A pytest plugin hiding ``names`` from everything imported after pytest's own start-up."""

    def __init__(self, names):
        self.names = tuple(names)

    @pytest.hookimpl(tryfirst=True)
    def pytest_load_initial_conftests(self):
        for name in self.names:
            for loaded in [m for m in sys.modules if m == name or m.startswith(name + ".")]:
                del sys.modules[loaded]
            sys.modules[name] = None


def main(install: str, args: list[str]) -> int:
    names = MISSING[install]
    no_plugins = [a for n in names if n in PLUGINS for a in ("-p", f"no:{PLUGINS[n]}")]
    return pytest.main(no_plugins + args, plugins=[Hide(names)])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2:]))
