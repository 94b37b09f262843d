"""callbacks: attempt stage, staff number rung, reason; why a request's next attempt is when it is

Revision ID: 0002_h12_callbacks
Revises: 0002_h17_reports
"""
from alembic import op
import sqlalchemy as sa


revision = '0002_h12_callbacks'
down_revision = '0002_h17_reports'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('callback_attempts') as batch:
        batch.add_column(sa.Column('stage', sa.String(length=16), nullable=True))
        batch.add_column(sa.Column('dialled', sa.String(length=20), nullable=True))
        batch.add_column(sa.Column('reason', sa.String(length=200), nullable=True))
    with op.batch_alter_table('callback_requests') as batch:
        batch.add_column(sa.Column('next_reason', sa.String(length=160), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('callback_requests') as batch:
        batch.drop_column('next_reason')
    with op.batch_alter_table('callback_attempts') as batch:
        batch.drop_column('reason')
        batch.drop_column('dialled')
        batch.drop_column('stage')
