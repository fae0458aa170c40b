"""in-toto attestations (DSSE envelopes) beside each signed report

Revision ID: 0004_evidence
Revises: 0003
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0004_evidence'
down_revision: str | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column('audit_reports', sa.Column('attestations', sa.JSON(), nullable=False, server_default='[]'))


def downgrade() -> None:
    op.drop_column('audit_reports', 'attestations')
