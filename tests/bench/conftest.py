"""The value-evaluation tests share the value model's fixtures (a synthetic table and a model fitted on it)."""

from tests.value.conftest import fitted, table  # noqa: F401
