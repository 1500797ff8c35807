"""``python -m engine``: the ``berth`` command line."""

from engine.cli import main

raise SystemExit(main())
