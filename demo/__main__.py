"""``python -m demo``."""

from demo.run import main

raise SystemExit(main())
