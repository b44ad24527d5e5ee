"""`sotazoo serve`: the built site over HTTP, on localhost unless told otherwise.

The server sends the cross-origin-isolation headers (COOP `same-origin`, COEP `require-corp`)
that give onnxruntime-web's wasm backend SharedArrayBuffer and so threads, the right types for
`.wasm`, `.mjs` and `.onnx`, and never serves a path outside the site folder.
"""

from __future__ import annotations

import functools
import http.server
import os
from pathlib import Path

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


def make_server(
    site: Path, host: str = "127.0.0.1", port: int = 8000, *, quiet: bool = False
) -> http.server.ThreadingHTTPServer:
    """A server for `site` (call `serve_forever`); port 0 picks a free one."""
    handler = functools.partial(
        type("Handler", (SiteHandler,), {"quiet": quiet}), directory=os.fspath(site)
    )
    return http.server.ThreadingHTTPServer((host, port), handler)
