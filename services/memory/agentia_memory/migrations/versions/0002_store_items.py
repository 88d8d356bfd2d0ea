"""Key-value store items (long-term memories are items too) and memory extractions.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

JSON_DOC = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "store_items",
        sa.Column("ns_path", sa.String(660), primary_key=True),
        sa.Column("key", sa.String(256), primary_key=True),
        sa.Column("namespace", JSON_DOC, nullable=False),
        sa.Column("depth", sa.Integer(), nullable=False),
        sa.Column("value", JSON_DOC, nullable=False),
        sa.Column("embedding", sa.LargeBinary(), nullable=True),
        sa.Column("ttl_minutes", sa.Float(), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_store_items_expires_at", "store_items", ["expires_at"])
    op.create_index("ix_store_items_ns_path", "store_items", ["ns_path"])
    op.create_table(
        "memory_extractions",
        sa.Column("run_id", sa.String(128), primary_key=True),
        sa.Column("thread_id", sa.String(128), nullable=True),
        sa.Column("memory_keys", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("memory_extractions")
    op.drop_index("ix_store_items_ns_path", "store_items")
    op.drop_index("ix_store_items_expires_at", "store_items")
    op.drop_table("store_items")
