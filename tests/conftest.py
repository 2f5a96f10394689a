import os
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
# Tests are deterministic and small: one thread keeps CPU timings and results stable.
torch.set_num_threads(1)
os.environ.setdefault("MPLBACKEND", "Agg")


@pytest.fixture
def repo_root() -> Path:
    return ROOT


@pytest.fixture
def python() -> str:
    return sys.executable


def require_data(name: str) -> None:
    """Skip a test whose offline dataset is missing, saying how to get it; under CI=true, fail instead.

    ``make test`` installs what it can before pytest starts (``python -m geomopt data --install``),
    so a skip here means this machine cannot install it (not root, no apt-get).
    """
    from geomopt.data import catalog

    _, found, detail = catalog._check(name, catalog.PROBES[name])
    if found:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"{name} missing under CI=true (nothing may skip for missing data): {detail}")
    pytest.skip(f"{name} missing: {detail}")


@pytest.fixture
def fashion_mnist() -> None:
    require_data("fashion_mnist")
