"""Alembic migrations of berth's database (``engine.store`` runs them on open).

``HEAD`` names the newest revision, so that opening an up-to-date database needs no Alembic
import (it costs ~0.3 s of start-up); tests/migrations checks it against the scripts.
"""

HEAD = "0006"
