"""With a real worker: coalesced requests get their own receipts; erasure is per model; pre-erasure weights are guarded."""

import json

import pytest

from service.audit.receipt import verify_document
from service.audit.signing import load_public_pem
from service.db.enums import Role
from tests.e2e.stack import launch
from tests.e2e.test_end_to_end import TINY_GATE, follow, register_demo_data

pytestmark = pytest.mark.integration
CONFIG = {"steps": 20}


def test_receipts_per_request_and_erasure_per_model(tmp_path):
    stack = launch("postgres", tmp_path, extra_env={"OBLIVIO_BATCH_WINDOW_SECONDS": "3"})
    try:
        base = register_demo_data(stack, gate={k: None for k in TINY_GATE})
        admin, officer, auditor = (stack.client(r) for r in (Role.admin, Role.officer, Role.auditor))
        spec = {"name": "twin", "training_dataset": "train", "proxy_dataset": "proxy", "gate_thresholds": {k: None for k in TINY_GATE}}
        admin.post("/models", data={"spec": json.dumps(spec)}, files={"checkpoint": ("b.safetensors", base)}).raise_for_status()

        bodies = [{"model": "tiny", "samples": ["tr-square-000"], "classes": ["circle"], "config": CONFIG},
                  {"model": "tiny", "samples": ["tr-stripe-001"], "config": CONFIG}]
        created = [officer.post("/unlearn-requests", json=b).json() for b in bodies]
        assert created[0]["job"]["id"] == created[1]["job"]["id"], created
        for request in created:
            final, _ = follow(auditor, request["id"])
            assert final["status"] == "completed", (final, stack.log_tail())

        public_key = load_public_pem(officer.get("/signing-key").text)
        report = auditor.get(f"/unlearn-requests/{created[0]['id']}/report").json()
        assert officer.get(f"/unlearn-requests/{created[0]['id']}/report").status_code == 403
        receipts = [officer.get(f"/unlearn-requests/{r['id']}/receipt").json() for r in created]
        assert [sorted(s["sample_key"] for s in r["body"]["samples"]) for r in receipts] == [
            [*[f"tr-circle-{i:03d}" for i in range(12)], "tr-square-000"], ["tr-stripe-001"]
        ]
        for receipt in receipts:
            assert verify_document(receipt, public_key, report=report)[0], receipt
            assert receipt["body"]["report"]["digest"] == report["digest"]
            assert receipt["body"]["verdict"]["outcome"] == "published"

        refused = officer.post("/unlearn-requests", json={"model": "tiny", "samples": ["tr-square-000"]})
        assert refused.status_code == 422
        assert refused.json()["detail"]["items"] == [
            {"field": "samples", "value": "tr-square-000", "problem": "already erased from this model"}
        ]
        other = officer.post("/unlearn-requests", json={"model": "twin", "samples": ["tr-square-000"], "config": CONFIG})
        assert other.status_code == 201, other.text
        final, _ = follow(auditor, other.json()["id"])
        assert (final["status"], final["result_version"]) == ("completed", 2), (final, stack.log_tail())

        assert officer.get("/models/tiny/versions/1/checkpoint").status_code == 403
        assert admin.get("/models/tiny/versions/1/checkpoint").content == base
        assert officer.get("/models/twin/versions/current/checkpoint").status_code == 200
        downloads = auditor.get("/audit-events", params={"subject": "model:tiny", "limit": 1000}).json()["items"]
        assert [e["data"]["version"] for e in downloads if e["action"] == "checkpoint.downloaded"] == [1]
    finally:
        stack.stop()
