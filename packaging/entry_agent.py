"""The bundle's ``hackatime-agent`` executable (also the keyring reader it starts: agent.secrets)."""

import sys

from agent.cli import main

sys.exit(main())
