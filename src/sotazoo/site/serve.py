"""`sotazoo serve`: the built site over HTTP, on localhost unless told otherwise.

The server sends the cross-origin-isolation headers (COOP `same-origin`, COEP `require-corp`)
that give onnxruntime-web's wasm backend SharedArrayBuffer and so threads, the right types for
`.wasm`, `.mjs` and `.onnx`, and never serves a path outside the site folder.
"""

from __future__ import annotations

import errno
import functools
import http.server
import os
import socket
import sys
from pathlib import Path

from sotazoo.errors import SotazooError

TYPES = {
    ".wasm": "application/wasm",
    ".mjs": "text/javascript",
    ".js": "text/javascript",
    ".onnx": "application/octet-stream",
    ".json": "application/json",
    ".svg": "image/svg+xml",
    ".css": "text/css",
    ".html": "text/html; charset=utf-8",
}


class SiteHandler(http.server.SimpleHTTPRequestHandler):
    extensions_map = {**http.server.SimpleHTTPRequestHandler.extensions_map, **TYPES}
    quiet = False

    def end_headers(self) -> None:
        self.send_header("Cross-Origin-Opener-Policy", "same-origin")
        self.send_header("Cross-Origin-Embedder-Policy", "require-corp")
        self.send_header("Cross-Origin-Resource-Policy", "same-origin")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Cache-Control", "no-cache")
        super().end_headers()

    def translate_path(self, path: str) -> str:
        # The base class already drops '..' segments; on top of that, resolve symlinks and
        # refuse anything that lands outside the site folder.
        root = Path(self.directory).resolve()
        target = Path(super().translate_path(path)).resolve()
        if target != root and root not in target.parents:
            return str(root / "__outside_the_site__")  # does not exist: 404
        return str(target)

    def list_directory(self, path):  # no directory listings
        self.send_error(404, "Not Found")
        return None

    def log_message(self, format: str, *args) -> None:
        if not self.quiet:
            super().log_message(format, *args)


class SiteServer(http.server.ThreadingHTTPServer):
    """A threading HTTP server that treats a client hanging up as the everyday event it is: one
    log line, not a traceback (the server carries on either way)."""

    quiet = False

    def handle_error(self, request, client_address) -> None:
        err = sys.exc_info()[1]
        if isinstance(err, ConnectionError | TimeoutError):
            if not self.quiet:
                print(f"{client_address[0]} hung up ({type(err).__name__})", file=sys.stderr)
            return
        super().handle_error(request, client_address)


def make_server(
    site: Path, host: str = "127.0.0.1", port: int = 8000, *, quiet: bool = False
) -> SiteServer:
    """A server for `site` (call `serve_forever`); port 0 picks a free one. A port out of range,
    a port in use or a host that does not resolve is a `SotazooError` saying which."""
    if not isinstance(port, int) or not 0 <= port <= 65535:
        raise SotazooError(f"port must be 0-65535 (0 picks a free one), got {port!r}")
    handler = functools.partial(
        type("Handler", (SiteHandler,), {"quiet": quiet}), directory=os.fspath(site)
    )
    server_class = type("Server", (SiteServer,), {"quiet": quiet})
    try:
        return server_class((host, port), handler)
    except socket.gaierror as e:
        raise SotazooError(f"cannot listen on host {host!r}: {e.strerror}") from None
    except OSError as e:
        if e.errno == errno.EADDRINUSE:
            raise SotazooError(
                f"port {port} on {host} is in use (another server?); pick another with --port, "
                "or --port 0 for a free one"
            ) from None
        raise SotazooError(f"cannot listen on {host}:{port}: {e.strerror or e}") from None
