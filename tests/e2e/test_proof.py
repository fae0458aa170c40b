"""Gate failures publish nothing and say why; approval gates a request before it runs (real worker)."""

import pytest

from service.db.enums import Role
from tests.e2e.stack import launch
from tests.e2e.test_end_to_end import TINY_GATE, follow, register_demo_data

pytestmark = pytest.mark.integration


@pytest.fixture
def approval_stack(tmp_path):
    stack = launch("postgres", tmp_path, {"OBLIVIO_REQUIRE_APPROVAL": "true"})
    yield stack
    stack.stop()


def test_gate_failure_publishes_nothing_and_says_which_threshold(tmp_path):
    stack = launch("postgres", tmp_path)
    try:
        register_demo_data(stack, gate={**TINY_GATE, "forget_min_psnr_drop": 1000.0})
        officer, auditor = stack.client(Role.officer), stack.client(Role.auditor)
        body = {"model": "tiny", "samples": ["tr-stripe-001"], "config": {"steps": 60}}
        created = officer.post("/unlearn-requests", json=body).json()
        final, _ = follow(auditor, created["id"])
        assert final["status"] == "failed" and final["reason"] == "gate_failed"
        assert "forget_min_psnr_drop" in final["reason_detail"] and "What can be changed" in final["reason_detail"]
        assert "steps" in final["reason_detail"] and "gate_thresholds" in final["reason_detail"]
        versions = auditor.get("/models/tiny/versions").json()
        assert [(v["version"], v["status"], v["is_current"]) for v in versions] == [(1, "published", True)]
        body = auditor.get(f"/unlearn-requests/{created['id']}/report").json()["body"]
        assert body["outcome"] == "gate_failed" and body["checkpoints"]["new"] is None
        failed = [c for c in body["gate"]["checks"] if c["status"] == "failed"]
        assert [c["name"] for c in failed] == ["forget_min_psnr_drop"] and body["gate"]["verdict"] == "failed"
        assert failed[0]["margin"] < 0 and failed[0]["threshold"] == 1000.0
        attempts = body["verification"]["attempts"]  # a forget-side failure is retried once with twice the budget
        assert [(a["budget"], a["verdict"]) for a in attempts] == [(60, "failed"), (120, "failed")]
        assert body["job"]["config"]["steps"] == 120 and body["error"] == final["reason_detail"]
        again = officer.post("/unlearn-requests", json={"model": "tiny", "samples": ["tr-stripe-001"]})
        assert again.status_code == 201, "a failed request erased nothing, so the sample can be requested again"
    finally:
        stack.stop()


def test_approval_path_end_to_end(approval_stack):
    register_demo_data(approval_stack)
    officer, reviewer = approval_stack.client(Role.officer), approval_stack.client(Role.reviewer)
    auditor = approval_stack.client(Role.auditor)
    waiting = officer.post("/unlearn-requests", json={"model": "tiny", "samples": ["tr-circle-001"]}).json()
    refused = officer.post("/unlearn-requests", json={"model": "tiny", "samples": ["tr-circle-002"]}).json()
    assert waiting["status"] == refused["status"] == "pending_approval" and waiting["job"] is None
    assert officer.post(f"/unlearn-requests/{waiting['id']}/approve").status_code == 403
    assert reviewer.post(f"/unlearn-requests/{refused['id']}/reject", json={}).status_code == 422
    rejected = reviewer.post(f"/unlearn-requests/{refused['id']}/reject", json={"reason": "not our data subject"}).json()
    assert rejected["status"] == "rejected" and rejected["reason_detail"] == "not our data subject"
    approved = reviewer.post(f"/unlearn-requests/{waiting['id']}/approve").json()
    assert approved["status"] == "queued" and approved["job"] is not None
    assert reviewer.post(f"/unlearn-requests/{waiting['id']}/approve").status_code == 409
    final, _ = follow(auditor, waiting["id"])
    assert final["status"] == "completed" and final["result_version"] == 2
    assert auditor.get(f"/unlearn-requests/{refused['id']}").json()["status"] == "rejected"
    actions = {
        rid: [e["action"] for e in auditor.get("/audit-events", params={"subject": f"request:{rid}"}).json()["items"]]
        for rid in (waiting["id"], refused["id"])
    }
    assert actions[refused["id"]] == ["request.received", "request.pending_approval", "request.rejected"]
    assert actions[waiting["id"]][:4] == ["request.received", "request.pending_approval", "request.approved", "request.queued"]
    assert actions[waiting["id"]][-1] == "request.completed"
    assert auditor.get("/audit-events/verify").json()["ok"] is True
