"""Where an extra is not installed (``v05[trl]``, ``v05[verl]``), its integration package is left out of the
doctest collection (``--doctest-modules`` imports every module of ``src``), as its tests skip."""

import importlib.util

collect_ignore_glob = [f"src/v05/integrations/{name}/*.py" for name in ("trl", "verl")
                       if importlib.util.find_spec(name) is None]
