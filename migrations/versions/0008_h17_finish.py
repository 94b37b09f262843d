"""reports: daily roll-up tables; the province a caller gave in the voice menu

Revision ID: 0006_h17_finish
Revises: 0002_h15_detect
"""
from alembic import op
import sqlalchemy as sa


revision = '0006_h17_finish'
down_revision = '0006_h16_record'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('callers', schema=None) as batch_op:
        batch_op.add_column(sa.Column('province', sa.String(length=2), nullable=True))
        batch_op.add_column(sa.Column('province_asked_at', sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        'report_rollup_state',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('tz', sa.String(length=64), nullable=False),
        sa.Column('through', sa.Date(), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('(CURRENT_TIMESTAMP)'), nullable=False),
        sa.PrimaryKeyConstraint('id'))
    op.create_table(
        'report_call_days',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('day', sa.Date(), nullable=False),
        sa.Column('line', sa.String(length=16), nullable=False),
        sa.Column('language', sa.String(length=24), nullable=True),
        sa.Column('country', sa.String(length=2), nullable=True),
        sa.Column('hang_node', sa.String(length=64), nullable=True),
        sa.Column('calls', sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint('id'))
    op.create_index('ix_report_call_days_day', 'report_call_days', ['day'])
    op.create_table(
        'report_event_days',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('day', sa.Date(), nullable=False),
        sa.Column('kind', sa.String(length=32), nullable=False),
        sa.Column('node', sa.String(length=64), nullable=True),
        sa.Column('events', sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint('id'))
    op.create_index('ix_report_event_days_day', 'report_event_days', ['day'])
    op.create_table(
        'report_funnel_days',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('day', sa.Date(), nullable=False),
        sa.Column('kind', sa.String(length=32), nullable=False),
        sa.Column('calls', sa.Integer(), nullable=False),
        sa.Column('spanning', sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint('id'))
    op.create_index('ix_report_funnel_days_day', 'report_funnel_days', ['day'])
    op.create_table(
        'report_caller_days',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('day', sa.Date(), nullable=False),
        sa.Column('caller_id', sa.Integer(), nullable=True),
        sa.Column('prev_day', sa.Date(), nullable=True),
        sa.Column('first_day', sa.Date(), nullable=True),
        sa.PrimaryKeyConstraint('id'))
    op.create_index('ix_report_caller_days_day', 'report_caller_days', ['day'])
    op.create_index('ix_report_caller_days_caller_day', 'report_caller_days', ['caller_id', 'day'])
    op.create_table(
        'report_caller_counts',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('day', sa.Date(), nullable=False),
        sa.Column('week_callers', sa.Integer(), nullable=False),
        sa.Column('week_first', sa.Integer(), nullable=False),
        sa.Column('month_callers', sa.Integer(), nullable=False),
        sa.Column('month_first', sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint('id'))
    op.create_index('ix_report_caller_counts_day', 'report_caller_counts', ['day'])


def downgrade() -> None:
    for table in ('report_caller_counts', 'report_caller_days', 'report_funnel_days', 'report_event_days', 'report_call_days',
                  'report_rollup_state'):
        op.drop_table(table)
    with op.batch_alter_table('callers', schema=None) as batch_op:
        batch_op.drop_column('province_asked_at')
        batch_op.drop_column('province')
