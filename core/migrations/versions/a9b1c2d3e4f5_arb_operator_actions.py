"""arbitrage operator actions (who paused, resumed, flattened... and what the engine answered), and the pair's
pause by an admin and the kill switch's reset kept across restarts

Revision ID: a9b1c2d3e4f5
Revises: f121064c2584
Create Date: 2026-12-07 22:10:00.000000
"""
from alembic import op
import sqlalchemy as sa

revision = 'a9b1c2d3e4f5'
down_revision = 'f121064c2584'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'arb_operator_actions',
        sa.Column('id', sa.BigInteger(), nullable=False),
        sa.Column('at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('pair', sa.String(length=64), nullable=False),
        sa.Column('action', sa.String(length=32), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=True),
        sa.Column('username', sa.String(length=64), nullable=False),
        sa.Column('result', sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_arb_operator_actions_user_id_users'),
                                ondelete='SET NULL'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_arb_operator_actions')),
    )
    op.create_index(op.f('ix_arb_operator_actions_at'), 'arb_operator_actions', ['at'], unique=False)
    op.add_column('arb_positions', sa.Column('paused_by', sa.String(length=64), nullable=True))
    op.add_column('arb_positions', sa.Column('loss_offset', sa.Numeric(precision=38, scale=18), nullable=False,
                                             server_default='0'))


def downgrade() -> None:
    op.drop_column('arb_positions', 'loss_offset')
    op.drop_column('arb_positions', 'paused_by')
    op.drop_index(op.f('ix_arb_operator_actions_at'), table_name='arb_operator_actions')
    op.drop_table('arb_operator_actions')
