"""Helpers shared by the test folders (on the path through ``pythonpath`` in pyproject.toml; a uniquely
named package, because frameworks such as verl install a top-level ``tests`` package)."""
