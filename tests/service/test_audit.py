"""Signatures, the audit log (tamper-evident in Postgres), purge, and the verify command."""

import json

from sqlalchemy import select, text

from service.audit.canonical import canonical_bytes
from service.audit.chain import record
from service.audit.logstore import verify_tree
from service.audit.sealer import seal_pending
from service.audit.signing import Signer, load_public_pem, verify_signed
from service.cli import main as cli
from service.db.enums import Role, VersionStatus
from service.db.models import Model, ModelVersion
from service.domain.hygiene import purge_superseded
from service.domain.versions import publish


def test_signature_verifies_and_fails_after_any_one_byte_changes(tmp_path):
    signer = Signer.from_file(tmp_path / "k.pem", create=True)
    body = {"outcome": "published", "metrics": {"psnr": 21.5}, "samples": ["a", "b"]}
    document = {"body": body, "signature": signer.sign(body)}
    assert verify_signed(document, signer.public_key) == (True, "signature valid")
    raw = canonical_bytes(body)
    for i in range(len(raw)):
        mutated = bytearray(raw)
        mutated[i] ^= 0x01
        try:
            tampered_body = json.loads(bytes(mutated))
        except ValueError:
            continue  # not JSON any more: refused before any signature check
        ok, _ = verify_signed({"body": tampered_body, "signature": document["signature"]}, signer.public_key)
        assert not ok, f"byte {i} changed and the signature still verified"
    other = Signer.from_file(tmp_path / "other.pem", create=True)
    assert verify_signed(document, other.public_key)[0] is False


def test_verify_command_exit_codes(tmp_path, capsys):
    signer = Signer.from_file(tmp_path / "k.pem", create=True)
    body = {"outcome": "published", "n": 1}
    (tmp_path / "key.pem").write_text(signer.public_pem())
    good = tmp_path / "report.json"
    good.write_text(json.dumps({"body": body, "signature": signer.sign(body)}))
    assert cli(["verify", str(good), "--public-key", str(tmp_path / "key.pem")]) == 0
    assert "OK" in capsys.readouterr().out
    bad = tmp_path / "bad.json"
    bad.write_text(good.read_text().replace('"n": 1', '"n": 2'))
    assert cli(["verify", str(bad), "--public-key", str(tmp_path / "key.pem")]) == 1
    assert "INVALID" in capsys.readouterr().out
    assert cli(["verify", str(tmp_path / "missing.json"), "--public-key", str(tmp_path / "key.pem")]) == 2


def test_editing_one_audit_row_in_postgres_is_named_by_verify(api):
    for i in range(5):
        record(api.session, actor="test", action="thing.happened", subject=f"thing:{i}", data={"i": i})
    api.session.commit()
    seal_pending(api.session, api.client.app.state.signer)
    api.session.commit()
    auditor = api.as_(Role.auditor)
    assert api.client.get("/audit-events/verify", headers=auditor).json()["ok"] is True
    events = api.client.get("/audit-events", params={"limit": 1000}, headers=auditor).json()["items"]
    target = events[-3]
    api.session.execute(text("ALTER TABLE audit_events DISABLE TRIGGER audit_events_append_only"))
    api.session.execute(text("UPDATE audit_events SET data = '{\"i\": 99}' WHERE id = :s"), {"s": target["seq"]})
    api.session.commit()
    verdict = api.client.get("/audit-events/verify", headers=auditor).json()
    assert verdict["ok"] is False
    assert verdict["first_broken_seq"] == target["seq"] and verdict["first_bad_index"] == target["index"]
    assert "edited" in verdict["reason"]


def test_audit_log_refuses_updates_without_a_superuser_override(api):
    record(api.session, actor="test", action="x", subject="y")
    api.session.commit()
    import pytest
    from sqlalchemy.exc import DBAPIError

    with pytest.raises(DBAPIError, match="append-only"):
        api.session.execute(text("UPDATE audit_events SET actor = 'mallory'"))
    api.session.rollback()


def test_state_changes_are_events_in_one_log(api):
    body = {"model": "m", "samples": ["tr-cat-000"]}
    created = api.client.post("/unlearn-requests", json=body, headers=api.as_(Role.officer)).json()
    api.client.post(f"/unlearn-requests/{created['id']}/cancel", headers=api.as_(Role.officer))
    events = api.client.get("/audit-events", params={"subject": f"request:{created['id']}"}, headers=api.as_(Role.auditor))
    assert [e["action"] for e in events.json()["items"]] == ["request.received", "request.queued", "request.cancelled"]
    assert all(e["actor"].startswith("key:") and e["actor"].endswith(":officer") for e in events.json()["items"])
    seal_pending(api.session, api.client.app.state.signer)
    assert verify_tree(api.session, api.client.app.state.signer.public_key).ok


def test_purge_removes_superseded_files_after_the_grace_period(api):
    store = api.client.app.state.store
    model = api.session.scalar(select(Model).where(Model.name == "m"))
    v1 = api.session.scalar(select(ModelVersion).where(ModelVersion.model_id == model.id))
    digest_v2 = store.put(b"version two bytes")
    publish(api.session, model=model, parent_version=1, job_id=None, digest=digest_v2, size=17, request_ids=[],
            metrics={}, actor="test")
    store.put_derived(v1.checkpoint_digest, "teacher-cache-v1", b"targets of v1")
    store.put_derived(digest_v2, "teacher-cache-v2", b"targets of v2")
    assert v1.status is VersionStatus.superseded and store.exists(v1.checkpoint_digest)
    assert purge_superseded(api.session, store=store, grace_seconds=3600, actor="test") == []
    assert store.exists(v1.checkpoint_digest)
    assert store.get_derived(v1.checkpoint_digest, "teacher-cache-v1") == b"targets of v1"
    purged = purge_superseded(api.session, store=store, grace_seconds=0, actor="test")
    assert [v.version for v in purged] == [1]
    assert not store.exists(v1.checkpoint_digest) and store.exists(digest_v2)
    assert store.get_derived(v1.checkpoint_digest, "teacher-cache-v1") is None  # derived from v1: purged with it
    assert store.get_derived(digest_v2, "teacher-cache-v2") == b"targets of v2"
    assert v1.status is VersionStatus.purged
    api.session.commit()
    events = api.client.get("/audit-events", params={"subject": "model:m", "limit": 100}, headers=api.as_(Role.auditor))
    purge_event = [e for e in events.json()["items"] if e["action"] == "version.purged"][0]
    assert purge_event["data"]["file_gone"] is True
    gone = api.client.get("/models/m/versions/1/checkpoint", headers=api.as_(Role.admin))
    assert gone.status_code == 410
    assert api.client.post("/models/m/versions/1/promote", headers=api.as_(Role.admin)).status_code == 409
