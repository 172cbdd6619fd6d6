"""fills: a user's fills in ledger order (the ledger's load and its watermark, index only) and by symbol
(the Statistics page's symbol choices)

Revision ID: c6d7e8f9a0b1
Revises: c2d3e4f5a6b7
Create Date: 2026-12-08 01:15:00.000000
"""
from alembic import op

revision = 'c6d7e8f9a0b1'
down_revision = 'c2d3e4f5a6b7'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_fills_user_ledger_order', 'fills', ['user_id', 'traded_at', 'id'], unique=False)
    op.create_index('ix_fills_user_symbol', 'fills', ['user_id', 'symbol'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_fills_user_symbol', table_name='fills')
    op.drop_index('ix_fills_user_ledger_order', table_name='fills')
