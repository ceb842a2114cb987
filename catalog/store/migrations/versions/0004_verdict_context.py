"""Verdicts keyed by server context too: a tool's category prior comes from its sibling tools.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("classifications") as batch:
        batch.add_column(sa.Column("context_hash", sa.String(64), nullable=False, server_default=""))
        batch.drop_constraint("uq_classifications_hash_version", type_="unique")
        batch.create_unique_constraint(
            "uq_classifications_hash_version_context", ["definition_hash", "classifier_version", "context_hash"]
        )


def downgrade() -> None:
    # Verdicts of one definition in several contexts would collide on the old key: keep the latest.
    op.execute(
        "DELETE FROM classifications WHERE id NOT IN "
        "(SELECT MAX(id) FROM classifications GROUP BY definition_hash, classifier_version)"
    )
    with op.batch_alter_table("classifications") as batch:
        batch.drop_constraint("uq_classifications_hash_version_context", type_="unique")
        batch.create_unique_constraint("uq_classifications_hash_version", ["definition_hash", "classifier_version"])
        batch.drop_column("context_hash")
