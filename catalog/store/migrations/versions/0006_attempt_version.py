"""Introspection attempts keep the server version they were made at: an incremental crawl
skips a server only when its latest attempt succeeded at the version listed now (compared
with the stored version, which every crawl updates, a server whose new version failed once
was never tried again).

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Attempts made before this column say nothing; they count at the server's stored version.
    with op.batch_alter_table("introspection_attempts") as batch:
        batch.add_column(sa.Column("server_version", sa.String(100)))


def downgrade() -> None:
    with op.batch_alter_table("introspection_attempts") as batch:
        batch.drop_column("server_version")
