"""Log lines are JSON objects carrying the id of the HTTP request or job they are about."""

import io
import json
import logging

import pytest

from service.db.enums import Role
from service.logs import JsonFormatter, configure_logging, log_context


@pytest.fixture
def lines(caplog):
    """JSON lines written through the production formatter by every `oblivio.*` logger during the test."""
    caplog.set_level(logging.INFO, logger="oblivio")
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("oblivio")
    logger.addHandler(handler)
    yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    logger.removeHandler(handler)


def test_every_response_carries_a_request_id_and_a_well_formed_incoming_one_is_kept(api):
    fresh = api.client.get("/healthz")
    assert len(fresh.headers["x-request-id"]) == 32
    assert api.client.get("/healthz").headers["x-request-id"] != fresh.headers["x-request-id"]
    assert api.client.get("/healthz", headers={"X-Request-ID": "lb-7f3a:01"}).headers["x-request-id"] == "lb-7f3a:01"
    forged = api.client.get("/healthz", headers={"X-Request-ID": 'x" injected\\n{"level":"ERROR"}'})
    assert forged.headers["x-request-id"] != 'x" injected\\n{"level":"ERROR"}'


def test_access_line_and_lines_logged_inside_a_handler_carry_the_request_id(api, lines):
    def handler() -> dict:
        logging.getLogger("oblivio.test").info("inside the handler", extra={"detail": {"n": 1}})
        return {}

    api.client.app.router.add_api_route("/test-log", handler)
    response = api.client.get("/test-log", headers={"X-Request-ID": "req-42"})
    assert response.status_code == 200
    api.client.get("/models/ghost", headers=api.as_(Role.auditor))

    logged = lines()
    inside = next(line for line in logged if line["msg"] == "inside the handler")
    assert inside["request_id"] == "req-42"
    assert inside["logger"] == "oblivio.test" and inside["level"] == "INFO" and inside["detail"] == {"n": 1}
    assert inside["ts"].endswith("Z")
    access = [line for line in logged if line["logger"] == "oblivio.http"]
    assert access[0]["request_id"] == "req-42"
    assert (access[0]["method"], access[0]["path"], access[0]["status"]) == ("GET", "/test-log", 200)
    assert access[0]["duration_ms"] >= 0
    assert access[1]["status"] == 404 and access[1]["request_id"] not in (None, "req-42")


def test_job_id_is_bound_for_the_block_and_restored_after(lines):
    log = logging.getLogger("oblivio.pipeline")
    with log_context(job_id="3b1c-job"):
        log.info("claimed")
        with log_context(request_id="r-1"):
            log.warning("both")
    log.info("outside")
    claimed, both, outside = lines()
    assert claimed["job_id"] == "3b1c-job" and "request_id" not in claimed
    assert both["job_id"] == "3b1c-job" and both["request_id"] == "r-1" and both["level"] == "WARNING"
    assert "job_id" not in outside


def test_exceptions_are_one_line_with_the_traceback_as_a_field(lines):
    try:
        raise ValueError("boom")
    except ValueError:
        logging.getLogger("oblivio.worker").exception("job failed", extra={"outcome": object()})
    (line,) = lines()
    assert line["msg"] == "job failed"
    assert "ValueError: boom" in line["exc"] and "Traceback" in line["exc"]
    assert line["outcome"].startswith("<object")


def test_configure_logging_sends_every_logger_through_the_json_formatter():
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        configure_logging("debug")
        assert root.level == logging.DEBUG
        (handler,) = root.handlers
        assert isinstance(handler.formatter, JsonFormatter)
        assert logging.getLogger("uvicorn.error").propagate and not logging.getLogger("uvicorn.error").handlers
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
