"""reports: case province and district, indexes for the indicators

Revision ID: 0002_h17_reports
Revises: 0002_h13_accounts
"""
from alembic import op
import sqlalchemy as sa


revision = '0002_h17_reports'
down_revision = '0002_h13_accounts'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('cases', schema=None) as batch_op:
        batch_op.add_column(sa.Column('province', sa.String(length=2), nullable=True))
        batch_op.add_column(sa.Column('district', sa.String(length=4), nullable=True))
    op.create_index('ix_calls_started_caller', 'calls', ['started_at', 'caller_id'], unique=False)
    op.create_index('ix_call_events_kind_call', 'call_events', ['kind', 'call_id', 'at', 'node', 'detail'],
                    unique=False)
    op.create_index('ix_callback_requests_case_id', 'callback_requests', ['case_id'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_callback_requests_case_id', table_name='callback_requests')
    op.drop_index('ix_call_events_kind_call', table_name='call_events')
    op.drop_index('ix_calls_started_caller', table_name='calls')
    with op.batch_alter_table('cases', schema=None) as batch_op:
        batch_op.drop_column('district')
        batch_op.drop_column('province')
