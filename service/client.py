"""A small synchronous client of the Oblivio HTTP API (used by the `oblivio` command line).

Every call returns the decoded JSON (or the raw response where the body is a document), raises
`ApiError` for an error response (`{"error": kind, "detail": ...}`), and `Unreachable` when no
HTTP answer came back at all.
"""

from typing import Any
from urllib.parse import quote

import httpx


class ApiError(Exception):
    def __init__(self, status: int, kind: str, detail: Any, request_id: str | None = None):
        super().__init__(f"{kind}: {detail}")
        self.status, self.kind, self.detail, self.request_id = status, kind, detail, request_id

    @classmethod
    def from_response(cls, response: httpx.Response) -> "ApiError":
        try:
            body = response.json()
            kind, detail = body["error"], body.get("detail")
        except (ValueError, KeyError, TypeError):
            kind, detail = response.reason_phrase.replace(" ", "") or "HTTPError", response.text[:500]
        return cls(response.status_code, kind, detail, response.headers.get("x-request-id"))


class Unreachable(Exception):
    """No HTTP response: connection refused, DNS failure, timeout."""


class Client:
    def __init__(self, http: httpx.Client, api_key: str | None = None):
        self.http = http
        self.headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}

    @classmethod
    def connect(cls, url: str, api_key: str | None, timeout: float = 30.0) -> "Client":
        return cls(httpx.Client(base_url=url, timeout=timeout, headers={"User-Agent": "oblivio-cli"}), api_key)

    def call(self, method: str, path: str, *, headers: dict[str, str] | None = None, **kwargs) -> httpx.Response:
        try:
            response = self.http.request(method, path, headers={**self.headers, **(headers or {})}, **kwargs)
        except httpx.TimeoutException as exc:
            raise Unreachable(f"no answer from {self.http.base_url} in time ({type(exc).__name__})") from exc
        except httpx.TransportError as exc:
            raise Unreachable(f"cannot reach the Oblivio API at {self.http.base_url}: {exc}") from exc
        if response.status_code >= 400:
            raise ApiError.from_response(response)
        return response

    def submit(self, body: dict[str, Any], *, idempotency_key: str | None = None) -> tuple[dict, bool]:
        """File a request; returns (request, created) where created is False for a replay."""
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        response = self.call("POST", "/unlearn-requests", json=body, headers=headers)
        return response.json(), response.status_code == 201

    def request(self, request_id: str) -> dict:
        return self.call("GET", f"/unlearn-requests/{_seg(request_id)}").json()

    def requests(self, **filters: Any) -> dict:
        params = {k: v for k, v in filters.items() if v is not None}
        return self.call("GET", "/unlearn-requests", params=params).json()

    def cancel(self, request_id: str) -> dict:
        return self.call("POST", f"/unlearn-requests/{_seg(request_id)}/cancel").json()

    def approve(self, request_id: str) -> dict:
        return self.call("POST", f"/unlearn-requests/{_seg(request_id)}/approve").json()

    def reject(self, request_id: str, reason: str) -> dict:
        return self.call("POST", f"/unlearn-requests/{_seg(request_id)}/reject", json={"reason": reason}).json()

    def report(self, request_id: str, *, html: bool = False) -> httpx.Response:
        return self.call("GET", f"/unlearn-requests/{_seg(request_id)}/report", params={"format": "html" if html else "json"})

    def signing_key(self) -> str:
        return self.call("GET", "/signing-key").text

    def keys(self) -> list[dict]:
        return self.call("GET", "/api-keys").json()

    def create_key(self, name: str, role: str) -> dict:
        return self.call("POST", "/api-keys", json={"name": name, "role": role}).json()

    def revoke_key(self, key_id: int) -> dict:
        return self.call("POST", f"/api-keys/{_seg(key_id)}/revoke").json()

    def models(self) -> list[dict]:
        return self.call("GET", "/models").json()

    def versions(self, model: str) -> list[dict]:
        return self.call("GET", f"/models/{_seg(model)}/versions").json()

    def promote(self, model: str, version: str) -> dict:
        return self.call("POST", f"/models/{_seg(model)}/versions/{_seg(version)}/promote").json()


def _seg(value: object) -> str:
    """One path segment, so that an id or name can never address another route."""
    segment = quote(str(value), safe="")
    return segment.replace(".", "%2E") if segment in (".", "..") else segment
