"""Alembic migrations of berth's database (``engine.store`` runs them on open)."""
