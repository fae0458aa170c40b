"""Body limits hold on the stream: chunked, mislabelled and lying bodies are refused before the limit is passed.

The TestClient reads a request body in full before the app sees it, so the streaming cases drive
the ASGI app directly with a `receive` that counts how much of an endless body was pulled.
"""

import itertools
import json

import anyio
import pytest

from service.db.enums import Role
from tests.builders import tiny_checkpoint

CHUNK = 64 * 1024


def stream(api, path: str, headers: dict[str, str], first: bytes = b"") -> tuple[int, dict, int]:
    """POST an endless body (`first`, then spaces) to the app; returns (status, JSON body, bytes pulled).

    Every one of these is refused before the body ends, so every response closes the connection.
    """
    chunks = itertools.chain([first], itertools.repeat(b" " * CHUNK))
    pulled, sent = 0, []

    async def receive():
        nonlocal pulled
        chunk = next(chunks)
        pulled += len(chunk)
        return {"type": "http.request", "body": chunk, "more_body": True}

    async def send(message):
        sent.append(message)

    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
        "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "", "state": {},
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        "client": ("127.0.0.1", 5000), "server": ("testserver", 80),
    }  # fmt: skip
    anyio.run(api.client.app, scope, receive, send)
    start = next(m for m in sent if m["type"] == "http.response.start")
    assert (b"connection", b"close") in start["headers"]  # refused before its end: the server stops reading too
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return start["status"], json.loads(body), pulled


@pytest.fixture
def small(api):
    settings = api.client.app.state.settings
    settings.max_body_bytes, settings.max_upload_bytes = 256 * 1024, 1024 * 1024
    return api


def test_chunked_json_body_is_cut_off_at_the_limit(small):
    headers = {**small.as_(Role.officer), "content-type": "application/json", "transfer-encoding": "chunked"}
    status, body, pulled = stream(small, "/unlearn-requests", headers, first=b'{"model": "m", "samples": ["')
    assert (status, body["error"]) == (413, "PayloadTooLarge")
    assert pulled <= 256 * 1024 + CHUNK


@pytest.mark.parametrize("content_type", ["multipart/form-data; boundary=x", "text/plain", "application/x-www-form-urlencoded"])
def test_a_json_endpoint_refuses_other_media_types_without_reading(small, content_type):
    for path in ("/unlearn-requests", "/datasets", "/api-keys"):
        headers = {**small.as_(Role.admin), "content-type": content_type, "transfer-encoding": "chunked"}
        status, body, pulled = stream(small, path, headers)
        assert (status, body["error"], pulled) == (415, "UnsupportedMediaType", 0), path


def test_a_content_length_over_the_limit_is_refused_before_reading(small):
    for headers in ({}, small.as_(Role.officer)):
        headers = {**headers, "content-type": "application/json", "content-length": str(256 * 1024 + 1)}
        status, body, pulled = stream(small, "/unlearn-requests", headers)
        assert (status, body["error"], pulled) == (413, "PayloadTooLarge", 0)
    for length in ("12x", "²", "-1", "1" * 30):
        status, body, pulled = stream(small, "/unlearn-requests", {**small.as_(Role.officer), "content-length": length})
        assert (status, body["error"], pulled) == (400, "BadRequest", 0), length


def test_uploads_have_their_own_larger_limit_on_the_stream(small):
    headers = {**small.as_(Role.admin), "content-type": "multipart/form-data; boundary=x", "transfer-encoding": "chunked"}
    part = b'--x\r\nContent-Disposition: form-data; name="checkpoint"; filename="m.safetensors"\r\n\r\n'
    status, body, pulled = stream(small, "/models", headers, first=part)
    assert (status, body["error"]) == (413, "PayloadTooLarge")
    assert 256 * 1024 < pulled <= 1024 * 1024 + CHUNK


def test_anonymous_uploads_are_refused_before_reading(small):
    headers = {"content-type": "multipart/form-data; boundary=x", "transfer-encoding": "chunked"}
    status, body, pulled = stream(small, "/models", headers)
    assert (status, body["error"], pulled) == (401, "Unauthenticated", 0)


def test_an_upload_larger_than_the_json_limit_still_registers(api):
    api.client.app.state.settings.max_body_bytes = 600
    checkpoint = tiny_checkpoint(config={"image_size": 16, "pad": "x" * 700})
    response = api.client.post(
        "/models",
        headers=api.as_(Role.admin),
        data={"spec": '{"name": "big", "training_dataset": "train", "proxy_dataset": "proxy"}'},
        files={"checkpoint": ("big.safetensors", checkpoint)},
    )
    assert response.status_code == 202, response.text  # accepted; a worker's verdict is next
    admin = api.as_(Role.admin)
    too_big = api.client.post("/datasets", headers=admin, json={"name": "d", "kind": "training", "description": "x" * 700})
    assert (too_big.status_code, too_big.json()["error"]) == (413, "PayloadTooLarge")
    fits = api.client.post("/datasets", headers=admin, json={"name": "d", "kind": "training", "description": "x" * 70})
    assert fits.status_code == 201 and "connection" not in fits.headers  # read to its end: the connection is kept
