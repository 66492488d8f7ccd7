"""The bundle's ``hackatime-desktop`` executable: the tray, the window process, ``--smoke``."""

import sys

from app.main import main

sys.exit(main())
