"""key material: token and credential keys kept in the database

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02 05:20:00
"""

from alembic import op
import sqlalchemy as sa
import openims.db.types


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'key_material',
        sa.Column('purpose', sa.String(length=16), nullable=False),
        sa.Column('idx', sa.Integer(), autoincrement=False, nullable=False),
        sa.Column('sealed', sa.Text(), nullable=False),
        sa.Column('created_at', openims.db.types.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint('purpose', 'idx'),
    )


def downgrade() -> None:
    op.drop_table('key_material')
