import pytest
import torch


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path, monkeypatch):
    """Every test gets its own SOTAZOO_HOME: no test touches ~/.cache."""
    monkeypatch.setenv("SOTAZOO_HOME", str(tmp_path / "home"))


@pytest.fixture(autouse=True)
def _deterministic():
    torch.manual_seed(0)
