"""The deadline of a request: its one extension (GDPR Art. 12(3))."""

import uuid

from fastapi import APIRouter

from service.api.deps import Officer, SessionDep
from service.api.responses import errors
from service.api.routing import GuardedRoute
from service.api.views import request_view
from service.domain.deadlines import extend_request
from service.domain.requests import get_request
from service.schemas.requests import Extension, RequestView

router = APIRouter(prefix="/unlearn-requests", tags=["unlearn requests"], responses=errors(), route_class=GuardedRoute)


@router.post("/{request_id}/extension", response_model=RequestView)
def extend(request_id: uuid.UUID, body: Extension, key: Officer, session: SessionDep) -> RequestView:
    """Extend the due date once by one or two months, with the reason; refused (409) once extended, once the
    request is finished, or once its due date has passed. Recorded in the audit log (`request.extended`)."""
    extend_request(session, request=get_request(session, request_id=request_id, for_update=True),
                   months=body.months, reason=body.reason, key=key)
    return request_view(get_request(session, request_id=request_id))
