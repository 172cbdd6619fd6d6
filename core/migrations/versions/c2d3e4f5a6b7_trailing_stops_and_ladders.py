"""orders: a trailing stop's trail (%), the take-profit ladder a rung belongs to; emulated trailing stops' watches

Revision ID: c2d3e4f5a6b7
Revises: c3d4e5f6a7b8
Create Date: 2026-12-08 01:00:00.000000
"""
from alembic import op
import sqlalchemy as sa

revision = 'c2d3e4f5a6b7'
down_revision = 'c3d4e5f6a7b8'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('orders', sa.Column('trail_pct', sa.Numeric(precision=38, scale=18), nullable=True))
    op.add_column('orders', sa.Column('ladder_group', sa.String(length=64), nullable=True))
    op.create_table(
        'trailing_watches',
        sa.Column('order_id', sa.BigInteger(), nullable=False),
        sa.Column('extreme', sa.Numeric(precision=38, scale=18), nullable=True),
        sa.Column('trigger_price', sa.Numeric(precision=38, scale=18), nullable=True),
        sa.Column('triggered_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['order_id'], ['orders.id'], name=op.f('fk_trailing_watches_order_id_orders'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('order_id', name=op.f('pk_trailing_watches')),
    )


def downgrade() -> None:
    op.drop_table('trailing_watches')
    op.drop_column('orders', 'ladder_group')
    op.drop_column('orders', 'trail_pct')
