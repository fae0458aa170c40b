"""checkpoint validation: what a worker found wrong with a rejected base checkpoint

Version 1 of a model starts `validating` and becomes `published` or `rejected` once a worker has
loaded it strictly and run one forward pass (statuses are plain strings: no constraint to change).

Revision ID: 0004_checkpoint_validation
Revises: 0003
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0004_checkpoint_validation'
down_revision: str | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column('model_versions', sa.Column('problems', sa.JSON(), nullable=False, server_default='[]'))


def downgrade() -> None:
    with op.batch_alter_table('model_versions') as batch:
        batch.drop_column('problems')
