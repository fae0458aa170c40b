"""The request path's cost in SQL statements: counted with an engine listener, bounded so a regression shows."""

from contextlib import contextmanager

from sqlalchemy import event

from service.db.enums import Role


@contextmanager
def statements(engine):
    """Every statement sent to the database inside the block (the audit log's own are listed apart)."""
    seen: list[str] = []

    def count(conn, cursor, statement, parameters, context, executemany):
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", count)


def is_audit(statement: str) -> bool:
    return "audit_events" in statement or "pg_advisory" in statement


def submit(api, body, **headers):
    return api.client.post("/unlearn-requests", json=body, headers={**api.as_(Role.officer), **headers})


def test_statements_per_submission(api, pg_engine):
    submit(api, {"model": "m", "samples": ["tr-cat-003"]}).raise_for_status()  # warm: a first request opens the job
    for body, headers in (
        ({"model": "m", "samples": ["tr-cat-000"]}, {}),
        ({"model": "m", "samples": ["tr-cat-001", "tr-dog-001"], "external_id": "x-1"}, {"Idempotency-Key": "k-1"}),
        ({"model": "m", "classes": ["fox"]}, {}),
    ):
        with statements(pg_engine) as seen:
            submit(api, body, **headers).raise_for_status()
        print(len(seen), len([s for s in seen if not is_audit(s)]))
        for s in seen:
            print("   ", s[:150].replace("\n", " "))
