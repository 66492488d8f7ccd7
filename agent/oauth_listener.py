"""The one-shot loopback listener a sign-in's browser is redirected to (``agent.oauth``).

In its own module so that http.server is loaded only while someone signs in.
"""

from __future__ import annotations

import html
import http.server
import urllib.parse
from typing import Any

from .oauth import CALLBACK_PATH

_DONE_PAGE = (
    "<!DOCTYPE html><html><head><meta charset='utf-8'><title>Hackatime Desktop</title></head>"
    "<body style='font-family: sans-serif'><h1>{title}</h1><p>{text}</p></body></html>"
)


class _Callback(http.server.BaseHTTPRequestHandler):
    server: Listener

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the query holds the code: never printed

    def do_GET(self) -> None:
        parts = urllib.parse.urlsplit(self.path)
        if parts.path != CALLBACK_PATH:
            self.send_error(404)
            return
        query = {k: v[0] for k, v in urllib.parse.parse_qs(parts.query).items()}
        self.server.answer = query
        ok = "code" in query and query.get("state") == self.server.state
        title = "Signed in" if ok else "Sign-in failed"
        text = (
            "You can close this tab and go back to Hackatime Desktop."
            if ok
            else html.escape(query.get("error_description") or query.get("error") or "the answer was not understood")
        )
        body = _DONE_PAGE.format(title=title, text=text).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)


class Listener(http.server.HTTPServer):
    def __init__(self, state: str) -> None:
        super().__init__(("127.0.0.1", 0), _Callback)
        self.state = state
        self.answer: dict[str, str] | None = None
