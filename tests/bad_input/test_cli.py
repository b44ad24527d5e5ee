"""The bad-input corpus, command line and server: every bad argument is a one-line `error:` with a
non-zero exit, never a traceback, a silent success or a hang; the server refuses what it must and
survives clients that misbehave."""

from __future__ import annotations

import contextlib
import socket
import struct
import tempfile
from pathlib import Path

import pytest

from .harness import Case, CliError, check, cli

# A site folder no case may reach: each fails before building (bad port, busy port, bad host).
NOWHERE = str(Path(tempfile.gettempdir()) / "sotazoo-never-built")


def _busy_port() -> tuple[socket.socket, int]:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen()
    return s, s.getsockname()[1]


def _serve_on_busy_port() -> str:
    sock, port = _busy_port()
    with contextlib.closing(sock):
        return cli("serve", "--site", NOWHERE, "--port", str(port))()


def _sample_into_folder() -> str:
    with tempfile.TemporaryDirectory() as d:
        return cli("sample", "sagan_mini", "--out", d, "--seeds", "0")()


# fmt: off
CASES = [
    Case("bench-reps-0", cli("bench", "seresnet_mini", "--reps", "0"), "--reps.*at least 1", CliError),
    Case("bench-batch-0", cli("bench", "seresnet_mini", "--batch", "0"), "--batch.*at least 1", CliError),
    Case("bench-batch-negative", cli("bench", "seresnet_mini", "--batch", "-3"), "--batch.*at least 1", CliError),
    Case("bench-device-bogus", cli("bench", "seresnet_mini", "--device", "bogus"), "device.*bogus", CliError),
    Case("bench-device-cuda-absent", cli("bench", "seresnet_mini", "--device", "cuda:7"), "cuda", CliError),
    Case("bench-vs-unknown", cli("bench", "seresnet_mini", "--vs", "nowhere:thing"), "reference", CliError),
    Case("bench-vs-unknown-timm", cli("bench", "seresnet_mini", "--vs", "timm:no_such_net"), "no_such_net", CliError),
    Case("bench-size-zero", cli("bench", "seresnet_mini", "--size", "0"), "--size", CliError),
    Case("sample-out-folder", _sample_into_folder, "folder|\\.png", CliError),
    Case("sample-seeds-garbage", cli("sample", "sagan_mini", "--out", "/tmp/cli/x.png", "--seeds", "a-b"), "seeds", CliError),
    Case("sample-not-a-generator", cli("sample", "seresnet_mini", "--out", "/tmp/cli/x.png"), "generat", CliError),
    Case("train-budget-negative", cli("train", "seresnet_mini", "--budget", "-1"), "at least 1", CliError),
    Case("train-budget-zero", cli("train", "seresnet_mini", "--budget", "0"), "at least 1", CliError),
    Case("train-no-recipe", cli("train", "seresnet50"), "no training recipe", CliError),
    Case("site-build-out-cwd", cli("site", "build", "--out", "."), "current folder", CliError),
    Case("serve-port-out-of-range", cli("serve", "--site", NOWHERE, "--port", "99999"), "--port.*65535", CliError),
    Case("serve-port-negative", cli("serve", "--site", NOWHERE, "--port", "-1"), "port", CliError),
    Case("serve-port-busy", _serve_on_busy_port, "in use", CliError),
    Case("serve-host-unknown", cli("serve", "--site", NOWHERE, "--host", "no.such.host.invalid", "--port", "0"), "host", CliError),
    Case("export-tolerance-negative", cli("export", "seresnet_mini", "--onnx", "/tmp/cli/m.onnx", "--tolerance", "-1"), "tolerance", CliError),
    Case("export-opset-old", cli("export", "seresnet_mini", "--onnx", "/tmp/cli/m.onnx", "--opset", "9"), "opset", CliError),
    Case("export-onnx-folder", cli("export", "seresnet_mini", "--onnx", "/tmp"), "folder", CliError),
    Case("repro-unknown", cli("repro", "sennet", "--quick"), "did you mean senet", CliError),
    Case("repro-seed-negative", cli("repro", "senet", "--quick", "--seed", "-1"), "seed", CliError),
    Case("info-unknown-lang", cli("info", "senet", "--lang", "fr"), "invalid choice", CliError),
    Case("list-unknown-task", cli("list", "--task", "telepathy"), "task", CliError),
]
# fmt: on


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_case(case):
    check(case)


def test_server_survives_clients_that_hang_up(tmp_path, capfd):
    """A client that resets the connection mid-response, one that sends half a request and
    goes, and one that sends garbage: the server logs one line each, no traceback, and serves
    the next request."""
    import threading
    import urllib.request

    from sotazoo.site.serve import make_server

    (tmp_path / "index.html").write_text("x" * 2_000_000)  # big enough to be cut off mid-write
    server = make_server(tmp_path, "127.0.0.1", 0)
    port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        for payload in (
            b"GET /index.html HTTP/1.1\r\nHost: x\r\n\r\n",
            b"GET /ind",
            b"\x00\xff" * 50,
        ):
            s = socket.create_connection(("127.0.0.1", port))
            s.sendall(payload)
            # SO_LINGER 0: close with a reset, as a browser tab that is closed does
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            s.close()
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/index.html", timeout=10) as r:
            assert r.status == 200 and len(r.read()) == 2_000_000
    finally:
        server.shutdown()
        server.server_close()
    err = capfd.readouterr().err
    assert "Traceback" not in err, err
