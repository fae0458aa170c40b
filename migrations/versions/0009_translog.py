"""transparency log: audit events sealed into an RFC 9162 Merkle tree, signed checkpoints

audit_events gets a database-assigned id (the old seq, then a sequence) and a leaf_index that the
sealer sets once; prev_hash/hash stay for the events written before, which become the tree's first
leaves in seq order (leaf index = position in seq order, seq - 1 for an intact chain), their chain fields inside their entries. Their tree nodes
are written here; the sealer signs the first checkpoint over them when the API starts. On Postgres
the append-only trigger now lets exactly one update through: leaf_index from NULL to a value, every
other column unchanged. Downgrade is refused once events exist that the chain cannot hold (written
unchained after this upgrade) — a hash chain would have to be rewritten to take them.

Revision ID: 0009_translog
Revises: 0008_validation_progress
"""

import json
from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

from service.audit import merkle
from service.audit.translog import entry, entry_leaf_hash

revision: str = '0009_translog'
down_revision: str | None = '0008_validation_progress'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIG = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')
SEAL_ONCE = """
CREATE OR REPLACE FUNCTION audit_events_append_only() RETURNS trigger AS $$
BEGIN
  IF TG_OP = 'UPDATE' AND OLD.leaf_index IS NULL AND NEW.leaf_index IS NOT NULL
     AND (NEW.id, NEW.at, NEW.actor, NEW.action, NEW.subject, NEW.data::text, NEW.prev_hash, NEW.hash)
         IS NOT DISTINCT FROM (OLD.id, OLD.at, OLD.actor, OLD.action, OLD.subject, OLD.data::text, OLD.prev_hash, OLD.hash)
  THEN RETURN NEW; END IF;
  RAISE EXCEPTION 'audit_events is append-only';
END $$ LANGUAGE plpgsql"""
CHAIN_ONLY = ("CREATE OR REPLACE FUNCTION audit_events_append_only() RETURNS trigger AS $$ "
              "BEGIN RAISE EXCEPTION 'audit_events is append-only'; END $$ LANGUAGE plpgsql")


def upgrade() -> None:
    bind = op.get_bind()
    postgres = bind.dialect.name == "postgresql"
    if postgres:
        op.execute("ALTER TABLE audit_events DISABLE TRIGGER audit_events_append_only")
    with op.batch_alter_table('audit_events') as batch:
        batch.alter_column('seq', new_column_name='id', existing_type=BIG, existing_nullable=False)
        batch.add_column(sa.Column('leaf_index', sa.BigInteger(), nullable=True))
        batch.alter_column('prev_hash', existing_type=sa.String(64), nullable=True)
        batch.alter_column('hash', existing_type=sa.String(64), nullable=True)
        batch.create_unique_constraint(op.f('uq_audit_events_leaf_index'), ['leaf_index'])
    op.create_index('ix_audit_events_unsealed', 'audit_events', ['id'], unique=False,
                    postgresql_where=sa.text('leaf_index IS NULL'), sqlite_where=sa.text('leaf_index IS NULL'))
    if postgres:
        op.execute("CREATE SEQUENCE audit_events_id_seq OWNED BY audit_events.id")
        op.execute("SELECT setval('audit_events_id_seq', COALESCE((SELECT max(id) FROM audit_events), 0) + 1, false)")
        op.execute("ALTER TABLE audit_events ALTER COLUMN id SET DEFAULT nextval('audit_events_id_seq')")
    op.create_table('audit_tree_nodes',
    sa.Column('level', sa.SmallInteger(), autoincrement=False, nullable=False),
    sa.Column('idx', BIG, autoincrement=False, nullable=False),
    sa.Column('hash', sa.String(length=64), nullable=False),
    sa.PrimaryKeyConstraint('level', 'idx', name=op.f('pk_audit_tree_nodes'))
    )
    op.create_table('audit_checkpoints',
    sa.Column('size', BIG, autoincrement=False, nullable=False),
    sa.Column('root_hash', sa.String(length=64), nullable=False),
    sa.Column('note', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('size', name=op.f('pk_audit_checkpoints'))
    )
    _seal_chained_events(bind)
    if postgres:
        op.execute(SEAL_ONCE)
        op.execute("ALTER TABLE audit_events ENABLE TRIGGER audit_events_append_only")
        op.execute("CREATE FUNCTION audit_tree_append_only() RETURNS trigger AS $$ "
                   "BEGIN RAISE EXCEPTION '% is append-only', TG_TABLE_NAME; END $$ LANGUAGE plpgsql")
        for table in ('audit_tree_nodes', 'audit_checkpoints'):
            op.execute(f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
                       "FOR EACH ROW EXECUTE FUNCTION audit_tree_append_only()")


def _seal_chained_events(bind) -> None:
    """The chained events, in seq order, become leaves 0..n-1; their tree nodes are written here."""
    tree, nodes = merkle.CompactRange(), []
    insert = sa.text("INSERT INTO audit_tree_nodes (level, idx, hash) VALUES (:level, :idx, :hash)")
    rows = bind.execute(sa.text("SELECT id, at, actor, action, subject, data, prev_hash, hash FROM audit_events ORDER BY id"))
    for row in rows.fetchall():
        at = row.at if isinstance(row.at, datetime) else datetime.fromisoformat(row.at)
        at = at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
        data = row.data if isinstance(row.data, dict) else json.loads(row.data)
        value = entry(index=tree.size, at=at.isoformat(), actor=row.actor, action=row.action, subject=row.subject,
                      data=data, prev_hash=row.prev_hash, hash=row.hash)
        nodes += [{"level": lv, "idx": ix, "hash": h.hex()} for lv, ix, h in tree.append(entry_leaf_hash(value))]
        if len(nodes) >= 10_000:
            bind.execute(insert, nodes)
            nodes = []
    if nodes:
        bind.execute(insert, nodes)
    if tree.size:
        bind.execute(sa.text("UPDATE audit_events SET leaf_index = r.position - 1 FROM (SELECT id, row_number() OVER "
                             "(ORDER BY id) AS position FROM audit_events) AS r WHERE audit_events.id = r.id"))


def downgrade() -> None:
    bind = op.get_bind()
    postgres = bind.dialect.name == "postgresql"
    unchained = bind.execute(sa.text("SELECT count(*) FROM audit_events WHERE hash IS NULL")).scalar()
    if unchained:
        raise RuntimeError(f"{unchained} audit events were written after 0009_translog without a hash chain; "
                           "downgrading would have to rewrite the log")
    if postgres:
        for table in ('audit_tree_nodes', 'audit_checkpoints'):
            op.execute(f"DROP TRIGGER {table}_append_only ON {table}")
        op.execute("DROP FUNCTION audit_tree_append_only()")
        op.execute(CHAIN_ONLY)
        op.execute("ALTER TABLE audit_events ALTER COLUMN id DROP DEFAULT")
        op.execute("DROP SEQUENCE audit_events_id_seq")
    op.drop_table('audit_checkpoints')
    op.drop_table('audit_tree_nodes')
    op.drop_index('ix_audit_events_unsealed', table_name='audit_events')
    with op.batch_alter_table('audit_events') as batch:
        batch.drop_constraint(op.f('uq_audit_events_leaf_index'), type_='unique')
        batch.drop_column('leaf_index')
        batch.alter_column('prev_hash', existing_type=sa.String(64), nullable=False)
        batch.alter_column('hash', existing_type=sa.String(64), nullable=False)
        batch.alter_column('id', new_column_name='seq', existing_type=BIG, existing_nullable=False)
