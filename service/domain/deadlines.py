"""Legal deadlines of requests (GDPR Art. 12(3)): due one month after receipt, extendable once.

"Within one month of receipt of the request. That period may be extended by two further months
where necessary [...]. The controller shall inform the data subject of any such extension within
one month of receipt of the request, together with the reasons for the delay."

So: the default due date is one calendar month after Oblivio received the request (31 January is
due on the last day of February). A caller may state an earlier `due_at` (the controller may have
received the request before filing it here), never a later one. An extension is granted once, by
one or two months counted from the current due date, with a reason, and only before that date
has passed: an extension announced after the deadline is a breach, not an extension.
"""

import calendar
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from service.audit.chain import record
from service.config import Settings
from service.db.base import utcnow
from service.db.models import ApiKey, UnlearnRequest
from service.domain.auth import actor_of
from service.errors import Conflict

MAX_EXTENSION_MONTHS = 2
DUE_SOON_DAYS = 7  # an open request due within a week is highlighted and counted in /metrics


def add_months(moment: datetime, months: int) -> datetime:
    """The same day and time `months` calendar months later, clamped to the month's last day."""
    index = moment.month - 1 + months
    year, month = moment.year + index // 12, index % 12 + 1
    return moment.replace(year=year, month=month, day=min(moment.day, calendar.monthrange(year, month)[1]))


def legal_due(received: datetime) -> datetime:
    """The latest due date the law allows before any extension: one month after receipt."""
    return add_months(received, 1)


def default_due(received: datetime, settings: Settings) -> datetime:
    """One month after receipt, or `due_days` after it when that is set and earlier."""
    due = legal_due(received)
    if settings.due_days is not None:
        due = min(due, received + timedelta(days=settings.due_days))
    return due


def due_at_problem(due_at: datetime, received: datetime) -> str | None:
    """Why a caller's `due_at` is refused, or None: it lies after receipt and no later than the legal date."""
    if received < due_at <= legal_due(received):
        return None
    return (f"must lie after receipt ({received.isoformat()}) and no later than one month after it "
            f"({legal_due(received).isoformat()}, GDPR Art. 12(3)); extend a filed request with "
            f"POST /unlearn-requests/{{id}}/extension")


def extend_request(
    session: Session, *, request: UnlearnRequest, months: int, reason: str, key: ApiKey
) -> UnlearnRequest:
    """Push the due date `months` (1 or 2) months later, once, while the request is open and not yet due.

    The caller holds `request` locked (get_request(for_update=True)).
    """
    if request.status.is_terminal:
        raise Conflict(f"request is {request.status.value}: only an open request can be extended")
    if request.extended_at is not None:
        raise Conflict(f"the deadline was already extended on {request.extended_at.isoformat()}: "
                       f"Art. 12(3) allows one extension")
    now = utcnow()
    if request.due_at <= now:
        raise Conflict(f"the request was due on {request.due_at.isoformat()}: an extension must be decided "
                       f"before the deadline passes")
    previous = request.due_at
    actor = actor_of(key)
    request.original_due_at, request.due_at = previous, add_months(previous, months)
    request.extended_at, request.extended_by, request.extension_reason = now, actor, reason
    session.flush()
    record(session, actor=actor, action="request.extended", subject=f"request:{request.id}", data={
        "from": previous.isoformat(), "to": request.due_at.isoformat(), "months": months, "reason": reason,
    })
    return request


@dataclass(frozen=True)
class Urgency:
    days_left: int  # whole days until the due date, negative when overdue (open requests only matter)
    level: str  # "overdue", "soon" (within `soon_days`), "ok", or "closed" for a finished request


def urgency(*, due_at: datetime, open_: bool, now: datetime, soon_days: int = DUE_SOON_DAYS) -> Urgency:
    left = due_at - now
    days = left.days if left >= timedelta(0) else -((-left).days + (1 if (-left) % timedelta(days=1) else 0))
    if not open_:
        return Urgency(days, "closed")
    if left <= timedelta(0):
        return Urgency(days, "overdue")
    return Urgency(days, "soon" if left <= timedelta(days=soon_days) else "ok")
