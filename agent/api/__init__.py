"""The local HTTP API on 127.0.0.1: the WakaTime-compatible intake that editor plugins send to,
and the token-protected control API the tray app talks to.
"""

from .control import Control, load_or_create_token
from .httpserver import HTTPError, LocalServer, Request, Response, Router
from .intake import Intake

__all__ = ["Control", "HTTPError", "Intake", "LocalServer", "Request", "Response", "Router", "load_or_create_token"]
