"""audit_traces: the audit trail in Cloud Trace Service's trace fields (issue 13, items 4-5)

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-05 13:30:00
"""

from alembic import op
import sqlalchemy as sa


revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'audit_traces',
        sa.Column('id', sa.String(length=36), nullable=False),
        sa.Column('time', sa.BigInteger(), nullable=False),
        sa.Column('record_time', sa.BigInteger(), nullable=False),
        sa.Column('domain_id', sa.String(length=64), nullable=True),
        sa.Column('project_id', sa.String(length=64), nullable=True),
        sa.Column('user_id', sa.String(length=64), nullable=True),
        sa.Column('user_name', sa.String(length=255), nullable=True),
        sa.Column('user_domain_name', sa.String(length=255), nullable=True),
        sa.Column('access_key_id', sa.String(length=64), nullable=True),
        sa.Column('service_type', sa.String(length=16), nullable=False),
        sa.Column('resource_type', sa.String(length=64), nullable=False),
        sa.Column('resource_id', sa.String(length=255), nullable=True),
        sa.Column('resource_name', sa.String(length=255), nullable=True),
        sa.Column('trace_name', sa.String(length=64), nullable=False),
        sa.Column('trace_rating', sa.String(length=16), nullable=False),
        sa.Column('trace_type', sa.String(length=16), nullable=False),
        sa.Column('code', sa.String(length=16), nullable=True),
        sa.Column('request_id', sa.String(length=64), nullable=True),
        sa.Column('source_ip', sa.String(length=64), nullable=True),
        sa.Column('api_version', sa.String(length=16), nullable=True),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_audit_traces_domain_time', 'audit_traces', ['domain_id', 'time'], unique=False)
    op.create_index('ix_audit_traces_time', 'audit_traces', ['time'], unique=False)
    op.create_index('ix_audit_traces_resource_id', 'audit_traces', ['resource_id'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_audit_traces_resource_id', table_name='audit_traces')
    op.drop_index('ix_audit_traces_time', table_name='audit_traces')
    op.drop_index('ix_audit_traces_domain_time', table_name='audit_traces')
    op.drop_table('audit_traces')
