"""order lookup indexes: by source reference, and linked (protective / OCO) orders by market

Revision ID: a41c7e2d9b10
Revises: 6f5edeb1152e
Create Date: 2026-11-21 12:20:00.000000
"""
from alembic import op
import sqlalchemy as sa

revision = 'a41c7e2d9b10'
down_revision = '6f5edeb1152e'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_orders_source_ref', 'orders', ['source', 'source_ref'], unique=False)
    op.create_index('ix_orders_linked_by_market', 'orders', ['broker_id', 'symbol'], unique=False,
                    postgresql_where=sa.text('oco_group IS NOT NULL'))


def downgrade() -> None:
    op.drop_index('ix_orders_linked_by_market', table_name='orders', postgresql_where=sa.text('oco_group IS NOT NULL'))
    op.drop_index('ix_orders_source_ref', table_name='orders')
