"""``python -m server``: same as the ``xiaozhi-server`` console script."""

import sys

from server.cli import main

sys.exit(main())
