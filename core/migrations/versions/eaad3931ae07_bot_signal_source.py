"""bots: the signal source (venue + symbol of the candles the strategy sees), apart from the execution broker

Existing bots get their broker's venue and symbol as source (what ticked them until now).

Revision ID: eaad3931ae07
Revises: e5b9c3d7f2a8
Create Date: 2026-12-07 12:10:00.000000
"""
from alembic import op
import sqlalchemy as sa

revision = 'eaad3931ae07'
down_revision = 'e5b9c3d7f2a8'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('bots', sa.Column('source_venue', sa.String(length=16), nullable=True))
    op.add_column('bots', sa.Column('source_symbol', sa.String(length=32), nullable=True))
    op.execute("UPDATE bots SET source_venue = venue, source_symbol = symbol")
    op.alter_column('bots', 'source_venue', nullable=False)
    op.alter_column('bots', 'source_symbol', nullable=False)
    op.create_index('ix_bots_source_state', 'bots', ['source_venue', 'source_symbol', 'timeframe', 'state'])


def downgrade() -> None:
    op.drop_index('ix_bots_source_state', table_name='bots')
    op.drop_column('bots', 'source_symbol')
    op.drop_column('bots', 'source_venue')
