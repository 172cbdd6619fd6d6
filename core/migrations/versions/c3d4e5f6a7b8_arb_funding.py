"""arb funding: each funding payment a venue settled on a leg, attributed to the intent it was paid during

Revision ID: c3d4e5f6a7b8
Revises: b0c1d2e3f4a6
Create Date: 2026-12-08 00:50:00.000000
"""
from alembic import op
import sqlalchemy as sa

revision = 'c3d4e5f6a7b8'
down_revision = 'b0c1d2e3f4a6'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'arb_funding',
        sa.Column('id', sa.BigInteger(), nullable=False),
        sa.Column('pair', sa.String(length=64), nullable=False),
        sa.Column('intent_id', sa.BigInteger(), nullable=True),
        sa.Column('venue', sa.String(length=16), nullable=False),
        sa.Column('amount', sa.Numeric(precision=38, scale=18), nullable=False),
        sa.Column('booked_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['intent_id'], ['arb_intents.id'], name=op.f('fk_arb_funding_intent_id_arb_intents'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_arb_funding')),
    )
    op.create_index(op.f('ix_arb_funding_intent_id'), 'arb_funding', ['intent_id'], unique=False)
    op.create_index(op.f('ix_arb_funding_pair'), 'arb_funding', ['pair'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_arb_funding_pair'), table_name='arb_funding')
    op.drop_index(op.f('ix_arb_funding_intent_id'), table_name='arb_funding')
    op.drop_table('arb_funding')
