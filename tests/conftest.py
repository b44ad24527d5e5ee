import pytest
import torch


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path, monkeypatch):
    """Every test gets its own SOTAZOO_HOME and results folder: no test touches ~/.cache."""
    monkeypatch.setenv("SOTAZOO_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("SOTAZOO_RESULTS_TEST", str(tmp_path / "results"))


@pytest.fixture(autouse=True)
def _deterministic():
    torch.manual_seed(0)
