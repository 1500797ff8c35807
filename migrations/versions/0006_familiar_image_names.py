"""image names in Docker's familiar form

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01

"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = '0006'
down_revision: str | Sequence[str] | None = '0005'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_HUB = ("docker.io/", "index.docker.io/")


def _familiar(reference: str) -> str:
    """``docker.io/library/x:t`` as ``x:t``, ``docker.io/team/x:t`` as ``team/x:t`` (the
    engine's normalize_reference, applied to a stored ``name:tag``)."""
    name, _, tag = reference.rpartition(":")
    for domain in _HUB:
        name = name.removeprefix(domain)
    if name.startswith("library/") and name.count("/") == 1:
        name = name.removeprefix("library/")
    return f"{name}:{tag}"


def upgrade() -> None:
    """Upgrade data: names stored before references took Docker's familiar form are renamed
    to it. One whose familiar name is taken already (by a later import) goes, as a name moved
    to other content would: its image stays, dangling (named by its digest) if nothing else
    names it."""
    connection = op.get_bind()
    rows = connection.execute(sa.text(
        "SELECT reference, digest, size_bytes, created_at FROM images ORDER BY reference"
    )).fetchall()
    names = {row.reference: row.digest for row in rows}
    for reference, digest, size_bytes, created_at in rows:
        if reference.startswith("sha256:"):
            continue  # a dangling image, named by its digest
        familiar = _familiar(reference)
        name = familiar.rpartition(":")[0]
        if familiar == reference or name == "sha256" or (
                len(name) == 64 and all(char in "0123456789abcdef" for char in name)):
            continue  # as is: reserved for image IDs in the familiar form (removable by ID)
        if familiar not in names:
            connection.execute(sa.text(
                "UPDATE images SET reference = :familiar WHERE reference = :reference"),
                {"familiar": familiar, "reference": reference})
            names[familiar] = names.pop(reference)
            continue
        connection.execute(sa.text("DELETE FROM images WHERE reference = :reference"),
                           {"reference": reference})
        del names[reference]
        if digest not in names.values():
            connection.execute(sa.text(
                "INSERT INTO images (reference, digest, size_bytes, created_at) "
                "VALUES (:digest, :digest, :size_bytes, :created_at)"),
                {"digest": digest, "size_bytes": size_bytes, "created_at": created_at})
            names[digest] = digest


def downgrade() -> None:
    """Downgrade: nothing to undo (a familiar name is a valid name before this revision)."""
