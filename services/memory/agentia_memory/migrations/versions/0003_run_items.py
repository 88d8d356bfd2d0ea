"""Thread items keyed by the run that wrote them (run id, position in the run, attempt).

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("thread_items", sa.Column("run_id", sa.String(128), nullable=True))
    op.add_column("thread_items", sa.Column("run_position", sa.Integer(), nullable=True))
    op.add_column("thread_items", sa.Column("attempt", sa.Integer(), nullable=True))
    op.create_index(
        "ux_thread_items_run", "thread_items", ["thread_id", "run_id", "run_position"], unique=True
    )


def downgrade() -> None:
    op.drop_index("ux_thread_items_run", "thread_items")
    op.drop_column("thread_items", "attempt")
    op.drop_column("thread_items", "run_position")
    op.drop_column("thread_items", "run_id")
