"""erasure per model lineage

Erasure marks move from `samples` (one mark for every model trained on the dataset) into
`erasures`, one row per (model, sample). Each existing mark goes to the model whose version
erased it, attributed to the request of that version's job that named the sample (explicitly,
else through its class, else the job's first request).

Revision ID: 0006_erasure
Revises: 0005_config_steps
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0006_erasure'
down_revision: str | None = '0005_config_steps'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_samples = sa.table('samples', sa.column('id'), sa.column('class_label'), sa.column('erased_at'),
                    sa.column('erased_by_version_id'))
_versions = sa.table('model_versions', sa.column('id'), sa.column('model_id'), sa.column('created_by_job_id'))
_requests = sa.table('unlearn_requests', sa.column('id'), sa.column('job_id'), sa.column('classes', sa.JSON),
                     sa.column('received_at'))
_request_samples = sa.table('request_samples', sa.column('request_id'), sa.column('sample_id'))
_erasures = sa.table('erasures', sa.column('model_id'), sa.column('sample_id'), sa.column('request_id'),
                     sa.column('version_id'), sa.column('erased_at'))


def upgrade() -> None:
    op.create_table('erasures',
    sa.Column('model_id', sa.Integer(), nullable=False),
    sa.Column('sample_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('request_id', sa.Uuid(), nullable=True),
    sa.Column('version_id', sa.Integer(), nullable=False),
    sa.Column('erased_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['model_id'], ['models.id'], name=op.f('fk_erasures_model_id_models'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['request_id'], ['unlearn_requests.id'], name=op.f('fk_erasures_request_id_unlearn_requests'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['sample_id'], ['samples.id'], name=op.f('fk_erasures_sample_id_samples'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['version_id'], ['model_versions.id'], name=op.f('fk_erasures_version_id_model_versions')),
    sa.PrimaryKeyConstraint('model_id', 'sample_id', name=op.f('pk_erasures'))
    )
    _move_marks(op.get_bind())
    with op.batch_alter_table('samples') as batch:
        batch.drop_constraint(op.f('fk_samples_erased_by_version_id_model_versions'), type_='foreignkey')
        batch.drop_column('erased_by_version_id')
        batch.drop_column('erased_at')


def _move_marks(conn) -> None:
    marks = conn.execute(
        sa.select(_samples.c.id, _samples.c.class_label, _samples.c.erased_at, _versions.c.id, _versions.c.model_id,
                  _versions.c.created_by_job_id)
        .join(_versions, _versions.c.id == _samples.c.erased_by_version_id)
    ).all()
    jobs = {m.created_by_job_id for m in marks if m.created_by_job_id is not None}
    by_job: dict = {}
    named: set = set()
    if jobs:
        for r in conn.execute(sa.select(_requests).where(_requests.c.job_id.in_(jobs)).order_by(_requests.c.received_at)):
            by_job.setdefault(r.job_id, []).append(r)
        ids = [r.id for rows in by_job.values() for r in rows]
        named = {tuple(row) for row in conn.execute(
            sa.select(_request_samples.c.request_id, _request_samples.c.sample_id)
            .where(_request_samples.c.request_id.in_(ids))
        )}
    rows = []
    for sample_id, label, erased_at, version_id, model_id, job_id in marks:
        candidates = by_job.get(job_id, [])
        owner = (next((r for r in candidates if (r.id, sample_id) in named), None)
                 or next((r for r in candidates if label in (r.classes or [])), None)
                 or (candidates[0] if candidates else None))
        rows.append({"model_id": model_id, "sample_id": sample_id, "request_id": owner.id if owner else None,
                     "version_id": version_id, "erased_at": erased_at})
    for start in range(0, len(rows), 5000):
        conn.execute(_erasures.insert(), rows[start : start + 5000])


def downgrade() -> None:
    with op.batch_alter_table('samples') as batch:
        batch.add_column(sa.Column('erased_at', sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column('erased_by_version_id', sa.Integer(), nullable=True))
        batch.create_foreign_key(op.f('fk_samples_erased_by_version_id_model_versions'), 'model_versions',
                                 ['erased_by_version_id'], ['id'])
    def first(column):
        return sa.select(sa.func.min(column)).where(_erasures.c.sample_id == _samples.c.id).scalar_subquery()

    op.execute(_samples.update().values(erased_at=first(_erasures.c.erased_at),
                                        erased_by_version_id=first(_erasures.c.version_id)))
    op.drop_table('erasures')
