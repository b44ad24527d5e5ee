import pytest
import torch


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path, monkeypatch):
    """Every test gets its own SOTAZOO_HOME: no test touches ~/.cache."""
    monkeypatch.setenv("SOTAZOO_HOME", str(tmp_path / "home"))


@pytest.fixture(autouse=True)
def _deterministic():
    torch.manual_seed(0)


@pytest.fixture(scope="session")
def built_site(tmp_path_factory):
    """The site, built once per test session into its own SOTAZOO_HOME (npm ci runs there)."""
    from sotazoo.site.build import build_site

    home = tmp_path_factory.mktemp("site-home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SOTAZOO_HOME", str(home))
        site = build_site(home / "site", progress=False)
        from sotazoo.site.runtime import runtime_dir

        modules = runtime_dir() / "node_modules"
    return site, modules


@pytest.fixture(scope="session")
def site_url(built_site):
    """The built site served on a free localhost port for the session."""
    import threading

    from sotazoo.site.serve import make_server

    server = make_server(built_site[0], "127.0.0.1", 0, quiet=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()
