"""request digests

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01

"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = '0005'
down_revision: str | Sequence[str] | None = '0004'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema: the SHA-256 of each request's parameters (NULL on older rows)."""
    with op.batch_alter_table('api_requests') as batch_op:
        batch_op.add_column(sa.Column('request_digest', sa.String(length=64), nullable=True))


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table('api_requests') as batch_op:
        batch_op.drop_column('request_digest')
