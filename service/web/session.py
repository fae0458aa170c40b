"""Dashboard sign-in: an API key exchanged for a signed, expiring session cookie; CSRF tokens for forms.

The cookie holds the key's id, a CSRF token and the time it was issued, signed with itsdangerous
(HMAC-SHA256): never the key itself. Every page reloads the key row, so revoking a key ends its
sessions at once. The signing secret is derived from the report-signing key (an Ed25519 signature
of a fixed label is deterministic and only that key's holder can compute it), so every API
replica that shares the signing key accepts the same cookies and nothing new has to be deployed.

Forms carry a CSRF token: the session's own token once signed in, a double-submit cookie on the
sign-in form. The cookies are HttpOnly, SameSite=Strict, and Secure when the page came over https.
"""

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from fastapi import Request, Response
from itsdangerous import BadSignature, URLSafeTimedSerializer

from service.audit.signing import Signer

SESSION_COOKIE = "oblivio_session"
CSRF_COOKIE = "oblivio_csrf"
_LABEL = b"oblivio dashboard session cookies v1"


@dataclass(frozen=True)
class WebSession:
    key_id: int
    csrf: str


def serializer(signer: Signer) -> URLSafeTimedSerializer:
    secret = hashlib.sha256(signer.sign_bytes(_LABEL)).hexdigest()
    return URLSafeTimedSerializer(secret, salt="oblivio.web.session")


def read_session(request: Request) -> WebSession | None:
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    settings = request.app.state.settings
    try:
        data = serializer(request.app.state.signer).loads(token, max_age=settings.web_session_seconds)
        return WebSession(key_id=int(data["k"]), csrf=str(data["c"]))
    except (BadSignature, KeyError, TypeError, ValueError):
        return None


def start_session(request: Request, response: Response, *, key_id: int) -> None:
    token = serializer(request.app.state.signer).dumps({"k": key_id, "c": secrets.token_urlsafe(24)})
    _set(request, response, SESSION_COOKIE, token, request.app.state.settings.web_session_seconds)
    response.delete_cookie(CSRF_COOKIE, path="/ui")


def end_session(response: Response) -> None:
    response.delete_cookie(SESSION_COOKIE, path="/ui")


def csrf_token(request: Request) -> str:
    """The token forms carry: the session's, or before sign-in a double-submit cookie (see `set_csrf_cookie`)."""
    session = read_session(request)
    if session is not None:
        return session.csrf
    token = request.cookies.get(CSRF_COOKIE) or getattr(request.state, "new_csrf", None)
    if token is None:
        token = request.state.new_csrf = secrets.token_urlsafe(24)
    return token


def set_csrf_cookie(request: Request, response: Response) -> None:
    if getattr(request.state, "new_csrf", None):
        _set(request, response, CSRF_COOKIE, request.state.new_csrf, 3600)


def csrf_ok(request: Request, submitted: str | None) -> bool:
    session = read_session(request)
    expected = session.csrf if session is not None else request.cookies.get(CSRF_COOKIE)
    return bool(expected and submitted) and hmac.compare_digest(expected.encode(), submitted.encode())


def _set(request: Request, response: Response, name: str, value: str, max_age: int) -> None:
    response.set_cookie(name, value, max_age=max_age, path="/ui", httponly=True, samesite="strict",
                        secure=request.url.scheme == "https")
