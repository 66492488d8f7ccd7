"""The long-lived agent: store + intake + delivery + stats (+ watcher), wired together, one part
per module; ``Agent`` is the running whole, ``build_status`` its status picture without one.
"""

from .agent import Agent
from .stats import BACKUP_DIR
from .status import build_status, read_runtime_file

__all__ = ["BACKUP_DIR", "Agent", "build_status", "read_runtime_file"]
