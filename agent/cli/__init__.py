"""The ``hackatime-agent`` command line: one module per command group (run and sync, status,
key, import) beside the parser and what they share.
"""

from .parser import main

__all__ = ["main"]
