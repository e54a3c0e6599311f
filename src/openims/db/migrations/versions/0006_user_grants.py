"""user grants: roles granted to users directly, as Keystone does

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 16:20:00
"""

from alembic import op
import sqlalchemy as sa


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'user_grants',
        sa.Column('user_id', sa.String(length=64), nullable=False),
        sa.Column('role_id', sa.String(length=64), nullable=False),
        sa.Column('target_type', sa.String(length=16), nullable=False),
        sa.Column('target_id', sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(['role_id'], ['roles.id'], ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['user_id'], ['users.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('user_id', 'role_id', 'target_type', 'target_id'),
    )
    op.create_index(op.f('ix_user_grants_target_id'), 'user_grants', ['target_id'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_user_grants_target_id'), table_name='user_grants')
    op.drop_table('user_grants')
