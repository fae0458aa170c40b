"""Dashboard sign-ins and sign-outs as audit events: who held a dashboard session, and when.

Both go through `record` like every other event, so they are listed by `GET /audit-events` and the
dashboard's audit page and sealed into the transparency log. The actor is the key's id, name and
role (`actor_of`), never the key: the key is hashed on arrival and nothing of it is written.

A failed sign-in is not an audit event. Nothing limits the rate of sign-in attempts (nor of the
API's authentication failures), so an event per failure would let anyone fill the log, which can
never be pruned, with guessed keys. Failures are counted instead
(`oblivio_dashboard_sign_ins_total{outcome="refused"}` on /metrics), where a flood costs nothing.
"""

from datetime import timedelta

from sqlalchemy.orm import Session

from service.audit.chain import record
from service.db.base import utcnow
from service.domain.auth import Principal, actor_of


def record_sign_in(session: Session, *, key: Principal, lasts_seconds: int) -> None:
    expires_at = utcnow().replace(microsecond=0) + timedelta(seconds=lasts_seconds)
    record(session, actor=actor_of(key), action="dashboard.signed_in", subject=f"api_key:{key.id}",
           data={"expires_at": expires_at.isoformat()})


def record_sign_out(session: Session, *, key: Principal) -> None:
    record(session, actor=actor_of(key), action="dashboard.signed_out", subject=f"api_key:{key.id}")
