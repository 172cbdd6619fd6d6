"""orders: a trailing stop's trail (%), and the take-profit ladder a rung belongs to

Revision ID: c2d3e4f5a6b7
Revises: b0c1d2e3f4a6
Create Date: 2026-12-08 01:00:00.000000
"""
from alembic import op
import sqlalchemy as sa

revision = 'c2d3e4f5a6b7'
down_revision = 'b0c1d2e3f4a6'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('orders', sa.Column('trail_pct', sa.Numeric(precision=38, scale=18), nullable=True))
    op.add_column('orders', sa.Column('ladder_group', sa.String(length=64), nullable=True))


def downgrade() -> None:
    op.drop_column('orders', 'ladder_group')
    op.drop_column('orders', 'trail_pct')
