"""What every dashboard page shares: templates, the signed-in key, role checks, HTML error pages.

Role checks are the API's own: the role sets are read from the guards in service.api.deps and
checked with service.domain.auth.require_role, so a page admits exactly the keys its endpoint does.
"""

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import Depends, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.routing import APIRoute
from fastapi.templating import Jinja2Templates

from service.api import deps
from service.db.base import utcnow
from service.db.enums import Role
from service.db.models import ApiKey
from service.domain.auth import require_role
from service.errors import Forbidden, ServiceError, Unauthenticated
from service.web.session import csrf_ok, csrf_token, read_session, set_csrf_cookie

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=HERE / "templates")  # autoescapes .html templates
templates.env.filters["when"] = lambda at: at.strftime("%Y-%m-%d %H:%M UTC") if at else "—"
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "form-action 'self'; frame-ancestors 'none'; base-uri 'none'")


def _roles(guard: Any) -> frozenset[Role]:
    return guard.__metadata__[0].dependency.allowed_roles


OFFICER, READER, REVIEWER, AUDITOR, ADMIN = (
    _roles(g) for g in (deps.Officer, deps.Reader, deps.Reviewer, deps.Auditor, deps.Admin)
)


def may(key: ApiKey, roles: frozenset[Role]) -> bool:
    try:
        require_role(key, roles)
    except Forbidden:
        return False
    return True


class SignInRequired(Exception):
    pass


class BadCsrf(Exception):
    pass


def signed_in_key(request: Request, session: deps.SessionDep) -> ApiKey:
    """The key of the session cookie, reloaded: a revoked key's sessions end at once."""
    web = read_session(request)
    key = session.get(ApiKey, web.key_id) if web else None
    if key is None or key.revoked_at is not None:
        raise SignInRequired
    request.state.key = key
    return key


WebKey = Annotated[ApiKey, Depends(signed_in_key)]


def check_csrf(request: Request, token: str | None) -> None:
    if not csrf_ok(request, token):
        raise BadCsrf


def render(request: Request, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    key = getattr(request.state, "key", None)
    context |= {"key": key, "csrf": csrf_token(request), "now": utcnow(), "nav": _nav(key)}
    response = templates.TemplateResponse(request, template, context, status_code=status_code)
    set_csrf_cookie(request, response)
    return secure(response)


def secure(response: Response, csp: str = CSP) -> Response:
    response.headers["Content-Security-Policy"] = csp
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["Cache-Control"] = "no-store"
    return response


def _nav(key: ApiKey | None) -> list[tuple[str, str]]:
    if key is None:
        return []
    items = [("/ui/requests", "Requests", READER)]
    items += [("/ui/review", "Review queue", REVIEWER), ("/ui/models", "Models", frozenset(Role)),
              ("/ui/audit", "Audit log", AUDITOR), ("/ui/keys", "API keys", ADMIN)]
    return [(url, label) for url, label, roles in items if may(key, roles)]


def redirect(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


class WebRoute(APIRoute):
    """Turns the service's errors into HTML pages: sign-in for 401, a 403 page, 404, 409 and so on."""

    def get_route_handler(self) -> Callable[[Request], Awaitable[Response]]:
        handler = super().get_route_handler()

        async def page(request: Request) -> Response:
            try:
                return await handler(request)
            except SignInRequired:
                return redirect(f"/ui/sign-in?next={quote(request.url.path)}")
            except RequestValidationError as exc:
                problems = [f"{'.'.join(map(str, e['loc'][1:]))}: {e['msg']}" for e in exc.errors()]
                return render(request, "error.html", 422, title="Not accepted",
                              detail={"message": "The page could not use what was sent.", "items": problems[:20]})
            except BadCsrf:
                return render(request, "error.html", 403, title="Form expired",
                              detail="The form's security token did not match; reload the page and try again.")
            except Unauthenticated:
                return redirect("/ui/sign-in")
            except ServiceError as exc:
                return render(request, "error.html", exc.status_code, title=_titles.get(exc.status_code, "Error"),
                              detail=exc.detail)

        return page


_titles = {403: "Not allowed", 404: "Not found", 409: "Conflict", 410: "Gone", 422: "Not accepted", 400: "Bad request"}
