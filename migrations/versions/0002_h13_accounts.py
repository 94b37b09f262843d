"""staff sessions, forced password change, two-factor; numbers purgeable; notes and bodies encrypted

Bodies and notes stay TEXT: a Fernet token is text. Rows written before this revision are plaintext
and are read as they are; `hotline keys rotate` encrypts them (see hotline.crypto).

Revision ID: 0002_h13_accounts
Revises: 0001
"""
from alembic import op
import sqlalchemy as sa


revision = '0002_h13_accounts'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('staff_sessions',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('staff_id', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('(CURRENT_TIMESTAMP)'), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('remember', sa.Boolean(), nullable=False),
    sa.Column('ip', sa.String(length=64), nullable=True),
    sa.ForeignKeyConstraint(['staff_id'], ['staff_users.id'], name=op.f('fk_staff_sessions_staff_id_staff_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_staff_sessions'))
    )
    with op.batch_alter_table('staff_sessions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_staff_sessions_staff_id'), ['staff_id'], unique=False)
    with op.batch_alter_table('staff_users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('must_change_password', sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.add_column(sa.Column('totp_secret', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('totp_last_step', sa.BigInteger(), nullable=True))
    # Retention empties these once they are old (hotline.services.retention); the rows stay for counts.
    with op.batch_alter_table('callers', schema=None) as batch_op:
        batch_op.alter_column('phone', existing_type=sa.String(length=20), nullable=True)
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.alter_column('peer', existing_type=sa.String(length=20), nullable=True)


def downgrade() -> None:
    # Purged rows have no number to put back: a downgrade after a purge needs them deleted first.
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.alter_column('peer', existing_type=sa.String(length=20), nullable=False)
    with op.batch_alter_table('callers', schema=None) as batch_op:
        batch_op.alter_column('phone', existing_type=sa.String(length=20), nullable=False)
    with op.batch_alter_table('staff_users', schema=None) as batch_op:
        batch_op.drop_column('totp_last_step')
        batch_op.drop_column('totp_secret')
        batch_op.drop_column('must_change_password')
    with op.batch_alter_table('staff_sessions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_staff_sessions_staff_id'))
    op.drop_table('staff_sessions')
