"""The version, kept in one place: :data:`VERSION` below.

Everything that shows it (``--version`` of both commands, the user agent sent with
every heartbeat, the app's About box, the agent's status) reads it, and pyproject.toml
takes the package's version from it (setuptools' dynamic ``attr``, read without running
this file). It is a constant rather than read back from the installed package's metadata:
``importlib.metadata`` and the e-mail parser it brings cost the running agent 0.5 MiB of
its memory budget, for a string known when the code was written.
"""

VERSION = "0.1.0"
