"""Webhooks end to end: a real worker process delivers signed events to a real receiver, retrying after a 500,
and tells the key that downloaded version 1 to delete it once an erasure superseded it."""

import time

import pytest

from service.db.enums import Role
from tests.e2e.stack import launch
from tests.e2e.test_end_to_end import follow, register_demo_data
from tests.receiver import Receiver

pytestmark = pytest.mark.integration
LOCAL = {"OBLIVIO_WEBHOOK_ALLOW_HTTP": "true", "OBLIVIO_WEBHOOK_ALLOW_PRIVATE": "true",
         "OBLIVIO_WEBHOOK_BACKOFF_SECONDS": "0.5"}


def wait_for(receiver: Receiver, count: int, stack, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while len([r for r in receiver.received if r.status == 200]) < count and time.monotonic() < deadline:
        time.sleep(0.1)
    assert len([r for r in receiver.received if r.status == 200]) >= count, (receiver.received, stack.log_tail())


def test_a_worker_delivers_signed_events_with_retries_and_the_art19_notice(tmp_path):
    stack = launch("postgres", tmp_path, LOCAL)
    try:
        with Receiver(fail_first=1) as officer_hook, Receiver() as holder_hook:
            officer, reviewer = stack.client(Role.officer), stack.client(Role.reviewer)
            created = officer.post("/webhooks", json={"url": officer_hook.url, "events": ["request.completed"]})
            assert created.status_code == 201, created.text
            officer_hook.secret = created.json()["secret"]
            holder_hook.secret = reviewer.post("/webhooks", json={"url": holder_hook.url,
                                                                 "events": ["request.failed"]}).json()["secret"]
            register_demo_data(stack)
            assert reviewer.get("/models/tiny/versions/1/checkpoint").status_code == 200
            request = officer.post("/unlearn-requests", json={"model": "tiny", "samples": ["tr-square-000"],
                                                              "config": {"steps": 40}}).json()
            final, _ = follow(officer, request["id"])
            assert final["status"] == "completed", stack.log_tail()
            wait_for(officer_hook, 1, stack)
            wait_for(holder_hook, 1, stack)
            completed = officer_hook.verified()
            notice = holder_hook.verified()
        assert [r.status for r in officer_hook.received] == [500, 200]
        assert completed[1]["type"] == "request.completed" and completed[1]["data"]["request_id"] == request["id"]
        assert completed[1]["data"]["result_version"] == 2
        [superseded] = notice
        assert superseded["type"] == "version.superseded"
        assert (superseded["data"]["model"], superseded["data"]["version"]) == ("tiny", 1)
        [delivery] = officer.get(f"/webhooks/{created.json()['id']}/deliveries").json()["items"]
        assert [a["status_code"] for a in delivery["attempt_log"]] == [500, 200] and delivery["status"] == "succeeded"
    finally:
        stack.stop()
