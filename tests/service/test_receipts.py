"""One receipt per request: coalesced requests share a job report, never each other's samples."""

import json
import uuid

from service.audit.receipt import verify_document
from service.audit.signing import load_public_pem
from service.db.enums import Role
from service.db.models import Job
from service.domain.jobs import Claim, claim_job, get_job
from service.domain.reports import store_report
from worker.inputs import gather_inputs
from worker.report import build_report, requests_section


def submit(api, body) -> dict:
    response = api.client.post("/unlearn-requests", json=body, headers=api.as_(Role.officer))
    assert response.status_code == 201, response.text
    return response.json()


def run_coalesced_job(api) -> tuple[dict, dict]:
    """Two requests in one job (the first names tr-cat-000 and its whole class); the job's report as the worker signs it."""
    api.client.app.state.settings.batch_window_seconds = 60
    first = submit(api, {"model": "m", "samples": ["tr-cat-000"], "classes": ["cat"]})
    second = submit(api, {"model": "m", "samples": ["tr-fox-001", "tr-dog-002"]})
    job_id = uuid.UUID(first["job"]["id"])
    assert second["job"]["id"] == str(job_id)
    job = api.session.get(Job, job_id)
    job.not_before = job.created_at
    assert claim_job(api.session, job_id=job_id, owner="w", lease_seconds=60) is Claim.claimed
    inputs = gather_inputs(api.session, job=get_job(api.session, job_id=job_id), retain_max=10, eval_max=2)
    body = build_report(inputs=inputs, outcome="published", requests=requests_section(api.session, inputs),
                        data_read=None, config=inputs.config, new_checkpoint={"version": 2, "digest": "b" * 64},
                        metrics={"forget": {"before": {"mae": {"psnr": 20.0}}, "after": {"mae": {"psnr": 9.5}}}},
                        gate={"passed": True, "thresholds": {}, "checks": []})
    store_report(api.session, job_id=job_id, body=body, signer=api.client.app.state.signer, actor="test")
    api.session.commit()
    return first, second


def test_each_request_gets_its_own_signed_receipt(api):
    first, second = run_coalesced_job(api)
    auditor = api.as_(Role.auditor)
    public_key = load_public_pem(api.client.get("/signing-key").text)
    report = api.client.get(f"/unlearn-requests/{first['id']}/report", headers=auditor).json()
    receipts = {}
    for request in (first, second):
        response = api.client.get(f"/unlearn-requests/{request['id']}/receipt", headers=api.as_(Role.officer))
        assert response.status_code == 200, response.text
        again = api.client.get(f"/unlearn-requests/{request['id']}/receipt", headers=auditor)
        assert again.content == response.content  # rendered on demand, the same bytes every time
        receipts[request["id"]] = document = response.json()
        assert verify_document(document, public_key) == (True, "signature valid")
        assert verify_document(document, public_key, report=report) == (True, "signature valid; the receipt matches the report")
        assert document["digest"] == response.headers["x-receipt-digest"]

    named = [s["sample_key"] for r in report["body"]["requests"] if r["id"] == first["id"] for s in r["samples"]]
    assert sorted(named) == [f"tr-cat-{i:03d}" for i in range(4)]  # tr-cat-000, named and by class, once
    own = {rid: [s["sample_key"] for s in d["body"]["samples"]] for rid, d in receipts.items()}
    assert own == {first["id"]: [f"tr-cat-{i:03d}" for i in range(4)], second["id"]: ["tr-dog-002", "tr-fox-001"]}
    body = receipts[first["id"]]["body"]
    assert body["classes"] == ["cat"] and body["request"]["id"] == first["id"]
    assert body["verdict"] == {"outcome": "published", "gate_passed": True, "gate_checks": []}
    assert body["checkpoints"]["new"] == {"version": 2, "digest": "b" * 64}
    assert body["metrics"]["forget"]["after"]["mae"]["psnr"] == 9.5
    assert {d["body"]["report"]["digest"] for d in receipts.values()} == {report["digest"]}
    assert "tr-fox-001" not in json.dumps(receipts[first["id"]]["body"])
    assert "tr-cat-000" not in json.dumps(receipts[second["id"]]["body"])


def test_a_forged_or_mismatched_receipt_is_refused_offline(api):
    first, second = run_coalesced_job(api)
    public_key = load_public_pem(api.client.get("/signing-key").text)
    report = api.client.get(f"/unlearn-requests/{first['id']}/report", headers=api.as_(Role.auditor)).json()
    receipt = api.client.get(f"/unlearn-requests/{second['id']}/receipt", headers=api.as_(Role.officer)).json()
    tampered = {**receipt, "body": {**receipt["body"], "samples": receipt["body"]["samples"][:1]}}
    assert verify_document(tampered, public_key)[0] is False
    signer = api.client.app.state.signer  # a receipt validly signed but claiming fewer samples than the report
    short = {"body": tampered["body"], "signature": signer.sign(tampered["body"])}
    assert verify_document(short, public_key, report=report) == (
        False, "the receipt does not match what the report says of this request"
    )
    forged_report = {**report, "body": {**report["body"], "outcome": "gate_failed"}}
    assert verify_document(receipt, public_key, report=forged_report)[0] is False


def test_officers_get_receipts_and_only_auditors_the_full_report(api):
    first, _ = run_coalesced_job(api)
    path = f"/unlearn-requests/{first['id']}"
    for role in (Role.officer, Role.reviewer):
        refused = api.client.get(f"{path}/report", headers=api.as_(role))
        assert refused.status_code == 403 and refused.json()["error"] == "Forbidden"
    for role in (Role.auditor, Role.admin):
        assert api.client.get(f"{path}/report", headers=api.as_(role)).status_code == 200
    pending = submit(api, {"model": "m", "samples": ["tr-dog-000"]})
    missing = api.client.get(f"/unlearn-requests/{pending['id']}/receipt", headers=api.as_(Role.officer))
    assert missing.status_code == 404 and "no report yet" in missing.json()["detail"]


def test_verify_command_checks_a_receipt_alone_and_against_its_report(api, tmp_path, capsys):
    from service.cli import Exit, main

    first, _ = run_coalesced_job(api)
    files = {name: tmp_path / f"{name}.json" for name in ("receipt", "report")}
    files["receipt"].write_bytes(api.client.get(f"/unlearn-requests/{first['id']}/receipt", headers=api.as_(Role.officer)).content)
    files["report"].write_bytes(api.client.get(f"/unlearn-requests/{first['id']}/report", headers=api.as_(Role.auditor)).content)
    key = tmp_path / "key.pem"
    key.write_text(api.client.get("/signing-key").text)
    assert main(["verify", str(files["receipt"]), "--public-key", str(key)]) == Exit.OK
    assert main(["verify", str(files["receipt"]), "--public-key", str(key), "--against", str(files["report"])]) == Exit.OK
    assert "the receipt matches the report" in capsys.readouterr().out
    assert main(["verify", str(files["report"]), "--public-key", str(key), "--against", str(files["receipt"])]) == Exit.FAILED
    files["receipt"].write_text(files["receipt"].read_text().replace("tr-cat-001", "tr-cat-009"))
    assert main(["verify", str(files["receipt"]), "--public-key", str(key)]) == Exit.FAILED
