"""system switches: the administrator's global trading halt, stored durably

Revision ID: d4a8b2c6e1f7
Revises: c7d2e9a4f1b3
Create Date: 2026-12-07 03:10:00.000000
"""
from alembic import op
import sqlalchemy as sa

revision = 'd4a8b2c6e1f7'
down_revision = 'c7d2e9a4f1b3'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'system_switches',
        sa.Column('name', sa.String(length=32), nullable=False),
        sa.Column('enabled', sa.Boolean(), nullable=False),
        sa.Column('changed_by_id', sa.Integer(), nullable=True),
        sa.Column('changed_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['changed_by_id'], ['users.id'], name=op.f('fk_system_switches_changed_by_id_users'),
                                ondelete='SET NULL'),
        sa.PrimaryKeyConstraint('name', name=op.f('pk_system_switches')),
    )


def downgrade() -> None:
    op.drop_table('system_switches')
