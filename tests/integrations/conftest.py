"""Make the folder's helper modules (``trl_helpers``) importable by the tests, and share their fixtures."""

import sys
from pathlib import Path

import pytest
import torch

_HERE = str(Path(__file__).resolve().parent)
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)


@pytest.fixture
def one_torch_thread():
    """One torch thread: the tiny model's matmuls are 10x slower when threads fight over shared cores."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
