"""bot changes: each edit of a paused bot, only the fields that changed, before and after

Revision ID: b0c1d2e3f4a6
Revises: a9b1c2d3e4f5
Create Date: 2026-12-07 22:10:00.000000
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = 'b0c1d2e3f4a6'
down_revision = 'a9b1c2d3e4f5'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'bot_changes',
        sa.Column('id', sa.BigInteger(), nullable=False),
        sa.Column('bot_id', sa.Integer(), nullable=False),
        sa.Column('at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('before', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column('after', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.ForeignKeyConstraint(['bot_id'], ['bots.id'], name=op.f('fk_bot_changes_bot_id_bots'), ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_bot_changes_user_id_users'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_bot_changes')),
    )
    op.create_index(op.f('ix_bot_changes_bot_id'), 'bot_changes', ['bot_id'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_bot_changes_bot_id'), table_name='bot_changes')
    op.drop_table('bot_changes')
