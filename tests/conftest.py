"""Shared fixtures: the shared real data (skipped when absent) and small fitted value models."""

from pathlib import Path

import pytest

from v05_testing.tables import arithmetic_table, topic_table

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data`` beside the project; tests that need it skip with the reason when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"needs the shared data at {SHARED_DATA} (CI has it beside the clone)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def table():
    """A topic table whose difficulty is readable from the prompt text (:func:`v05_testing.tables.topic_table`)."""
    return topic_table()


@pytest.fixture(scope="session")
def fitted(table):
    """A value model (hashing encoder, no cache) meta-trained on :func:`table`."""
    from v05.value import ValueModel

    return ValueModel(encoder="hashing-64", cache_dir=False, n_pairs=2000).fit(table)


@pytest.fixture(scope="session")
def tiny_value_model():
    """A value model (hashing encoder, no cache) meta-trained on arithmetic prompts, as the engine uses it."""
    from v05.value import ValueModel

    return ValueModel(encoder="hashing-64", cache_dir=False, n_pairs=500).fit(arithmetic_table())


@pytest.fixture
def nothing_runs(monkeypatch):
    """Fail the test if ``v05 bench baseline`` reads the table or starts the simulation (a CLI check must come first)."""
    import v05.bench.baseline
    import v05.data

    def boom(*a, **k):
        raise AssertionError("reached the long computation before checking the input")

    monkeypatch.setattr(v05.data, "load_any", boom)
    monkeypatch.setattr(v05.bench.baseline, "run", boom)
