"""Verdicts keep the level their recommended policy follows beside the risk: under doubt a
stricter plausible reading tightens the policy without changing the risk.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Verdicts made before this column follow their risk ("" means the risk).
    with op.batch_alter_table("classifications") as batch:
        batch.add_column(sa.Column("policy_risk", sa.String(20), nullable=False, server_default=""))


def downgrade() -> None:
    with op.batch_alter_table("classifications") as batch:
        batch.drop_column("policy_risk")
