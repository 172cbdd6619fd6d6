"""candle source: which writer stored a candle (the live feed, an import, a venue download)

The live feed's upsert corrects candles stored by an import or a download; nothing else ever
overwrites a stored candle. Candles stored before this revision are of unknown origin: they count
as imported, so the feed corrects them too.

Revision ID: c7d2e9a4f1b3
Revises: c3e9f1a7b2d4
Create Date: 2026-12-07 01:40:00.000000
"""
from alembic import op
import sqlalchemy as sa

revision = 'c7d2e9a4f1b3'
down_revision = 'c3e9f1a7b2d4'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('candles', sa.Column('source', sa.String(length=8), server_default='import', nullable=False))
    op.create_check_constraint(op.f('ck_candles_source'), 'candles', "source IN ('feed', 'import', 'download')")


def downgrade() -> None:
    op.drop_constraint(op.f('ck_candles_source'), 'candles', type_='check')
    op.drop_column('candles', 'source')
