"""deadline extensions (GDPR Art. 12(3))

A request's due date may be extended once by up to two months, with a reason: the due date before
the extension, when, by which key and why are kept on the request (the audit log has the event).

Revision ID: 0010_deadlines
Revises: 0008_validation_progress
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0010_deadlines'
down_revision: str | None = '0009_translog'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column('unlearn_requests', sa.Column('original_due_at', sa.DateTime(timezone=True), nullable=True))
    op.add_column('unlearn_requests', sa.Column('extended_at', sa.DateTime(timezone=True), nullable=True))
    op.add_column('unlearn_requests', sa.Column('extended_by', sa.String(256), nullable=True))
    op.add_column('unlearn_requests', sa.Column('extension_reason', sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('unlearn_requests') as batch:
        for column in ('extension_reason', 'extended_by', 'extended_at', 'original_due_at'):
            batch.drop_column(column)
