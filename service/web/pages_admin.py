"""Dashboard pages for sign-in, models (versions and lineage), the audit log with its verification,
and API keys (admin)."""

from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import select

from service.api import audit as audit_api
from service.api.deps import SessionDep, SignerDep
from service.api.views import version_view
from service.db.enums import Role
from service.db.models import ApiKey, AuditEvent, UnlearnRequest
from service.domain.auth import (
    Principal, actor_of, authenticate, create_api_key, list_api_keys, require_role, revoke_api_key,
)
from service.domain.models import get_model, list_models
from service.domain.sign_ins import record_sign_in, record_sign_out
from service.domain.validation import model_status
from service.domain.versions import list_versions
from service.errors import Unauthenticated
from service.web.routing import ADMIN, AUDITOR, WebKey, WebRoute, check_csrf, redirect, render
from service.web.session import end_session, read_session, start_session

router = APIRouter(prefix="/ui", route_class=WebRoute, include_in_schema=False)
Csrf = Annotated[str | None, Form()]
EVENT_LIMIT = 200


@router.get("", response_class=HTMLResponse)
@router.get("/", response_class=HTMLResponse)
def home() -> Response:
    return redirect("/ui/requests")


@router.get("/sign-in", response_class=HTMLResponse)
def sign_in_page(request: Request, next: Annotated[str, Query(max_length=512)] = "") -> Response:
    return render(request, "sign_in.html", next=_safe_next(next), error=None)


@router.post("/sign-in", response_class=HTMLResponse)
def sign_in(request: Request, session: SessionDep, csrf: Csrf = None,
            api_key: Annotated[str, Form(max_length=512)] = "", next: Annotated[str, Form(max_length=512)] = "") -> Response:
    """Audited as `dashboard.signed_in`; a refused key is only counted on /metrics (service/domain/sign_ins.py says why)."""
    check_csrf(request, csrf)
    sign_ins = request.app.state.metrics.dashboard_sign_ins
    try:
        key = authenticate(session, token=api_key.strip() or None)
    except Unauthenticated as exc:
        sign_ins.labels("refused").inc()
        return render(request, "sign_in.html", 401, next=_safe_next(next), error=exc.detail)
    response = redirect(_safe_next(next) or "/ui/requests")
    start_session(request, response, key_id=key.id)
    record_sign_in(session, key=key, lasts_seconds=request.app.state.settings.web_session_seconds)
    sign_ins.labels("signed_in").inc()
    return response


def _safe_next(target: str) -> str:
    """Only a path of the dashboard itself: never another site (an open redirect)."""
    return target if target.startswith("/ui/") and not target.startswith("//") and "\\" not in target else ""


@router.post("/sign-out")
def sign_out(request: Request, session: SessionDep, csrf: Csrf = None) -> Response:
    """Audited as `dashboard.signed_out` when the cookie names a key; an expired or forged one ends no session."""
    check_csrf(request, csrf)
    web = read_session(request)
    if web is not None and (key := session.get(ApiKey, web.key_id)) is not None:
        record_sign_out(session, key=Principal.of(key))
    response = redirect("/ui/sign-in")
    end_session(response)
    return response


@router.get("/models", response_class=HTMLResponse)
def models_page(request: Request, key: WebKey, session: SessionDep) -> Response:
    require_role(key, frozenset(Role))
    models = [_model(session, m) for m in list_models(session)]
    return render(request, "models.html", models=models)


def _model(session, model) -> dict[str, Any]:
    versions = [version_view(v, current=model.current_version) for v in list_versions(session, model=model)]
    children: dict[int | None, list[int]] = {}
    for v in versions:
        children.setdefault(v.parent_version, []).append(v.version)
    return {"name": model.name, "family": model.family, "status": model_status(session, model=model),
            "current": model.current_version, "versions": versions, "children": children}


@router.get("/models/{name}", response_class=HTMLResponse)
def model_page(request: Request, name: str, key: WebKey, session: SessionDep) -> Response:
    require_role(key, frozenset(Role))
    model = get_model(session, name=name)
    ours = {str(r) for r in session.scalars(select(UnlearnRequest.id).where(UnlearnRequest.model_id == model.id))}
    return render(request, "model.html", model=_model(session, model), known=ours)


@router.get("/audit", response_class=HTMLResponse)
def audit_page(
    request: Request,
    key: WebKey,
    session: SessionDep,
    subject: Annotated[str, Query(max_length=256)] = "",
    action: Annotated[str, Query(max_length=64)] = "",
    before: Annotated[int | None, Query(ge=1, le=2**62)] = None,
) -> Response:
    require_role(key, AUDITOR)
    return render(request, "audit.html", **_events(session, subject=subject, action=action, before=before), verdict=None)


def _events(session, *, subject: str, action: str, before: int | None) -> dict[str, Any]:
    """Newest first, a page of EVENT_LIMIT at a time (`before`: the oldest # of the page seen)."""
    query = select(AuditEvent).order_by(AuditEvent.id.desc()).limit(EVENT_LIMIT)
    if before is not None:
        query = query.where(AuditEvent.id < before)
    if subject:
        query = query.where(AuditEvent.subject == subject)
    if action:
        query = query.where(AuditEvent.action == action)
    actions = list(session.scalars(select(AuditEvent.action).distinct().order_by(AuditEvent.action)))
    events = list(session.scalars(query))
    older = events[-1].id if len(events) == EVENT_LIMIT else None
    return {"events": events, "actions": actions, "limit": EVENT_LIMIT, "older": older,
            "filters": {"subject": subject, "action": action, "before": before or ""}}


@router.post("/audit/verify", response_class=HTMLResponse)
def audit_verify(request: Request, key: WebKey, session: SessionDep, signer: SignerDep, csrf: Csrf = None) -> Response:
    """Runs what `GET /audit-events/verify` runs (that endpoint's own function) and shows its verdict."""
    check_csrf(request, csrf)
    require_role(key, AUDITOR)
    result = audit_api.verify(key, session, signer)
    verdict = result.model_dump(mode="json") if hasattr(result, "model_dump") else dict(result)
    return render(request, "audit.html", **_events(session, subject="", action="", before=None), verdict=verdict)


@router.get("/keys", response_class=HTMLResponse)
def keys_page(request: Request, key: WebKey, session: SessionDep) -> Response:
    require_role(key, ADMIN)
    return render(request, "keys.html", keys=list_api_keys(session), created=None, roles=[r.value for r in Role])


@router.post("/keys", response_class=HTMLResponse)
def create_key(request: Request, key: WebKey, session: SessionDep, csrf: Csrf = None,
               name: Annotated[str, Form(min_length=1, max_length=128)] = "",
               role: Annotated[Role, Form()] = Role.officer) -> Response:
    check_csrf(request, csrf)
    require_role(key, ADMIN)
    if not name.strip():
        return render(request, "error.html", 422, title="Not accepted", detail="A key needs a name.")
    created, token = create_api_key(session, name=name.strip(), role=role, actor=actor_of(key))
    session.flush()
    return render(request, "keys.html", keys=list_api_keys(session), roles=[r.value for r in Role],
                  created={"key": created, "token": token})


@router.post("/keys/{key_id}/revoke", response_class=HTMLResponse)
def revoke_key(request: Request, key_id: int, key: WebKey, session: SessionDep, csrf: Csrf = None) -> Response:
    check_csrf(request, csrf)
    require_role(key, ADMIN)
    revoke_api_key(session, key_id=key_id, actor=actor_of(key))
    return redirect("/ui/keys")

