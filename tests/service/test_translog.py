"""The transparency log: RFC 9162 trees and proofs, signed checkpoints, the sealer, receipts' proofs checked
offline by the CLI, and tampering (edit, delete, reorder, fork) detected with the first bad leaf named."""

import base64
import json
import threading

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from service.audit import merkle
from service.audit.canonical import digest
from service.audit.chain import record
from service.audit.note import NoteError, parse_checkpoint, sign_checkpoint, verify_checkpoint
from service.audit.sealer import Sealer, seal_pending
from service.audit.signing import Signer
from service.audit.translog import b64, verify_consistency_notes
from service.cli import Exit, main
from service.config import Settings
from service.db.enums import Role
from service.db.migrate import upgrade
from tests.conftest import fresh_database
from tests.service.test_receipts import run_coalesced_job

# RFC 6962 test inputs and the roots of their trees of sizes 1..8 (as in certificate-transparency's test data)
VECTOR = [b"", b"\x00", b"\x10", b"\x20\x21", b"\x30\x31", b"\x40\x41\x42\x43", bytes(range(0x50, 0x58)), bytes(range(0x60, 0x70))]
ROOTS = ["6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
         "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
         "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
         "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
         "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
         "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
         "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
         "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"]  # fmt: skip


def build(leaves: list[bytes]) -> tuple[merkle.CompactRange, dict]:
    tree, nodes = merkle.CompactRange(), {}
    for leaf in leaves:
        nodes.update({(lv, ix): h for lv, ix, h in tree.append(leaf)})
    return tree, nodes


def naive_root(leaves: list[bytes]) -> bytes:
    if len(leaves) == 1:
        return leaves[0]
    k = 1 << ((len(leaves) - 1).bit_length() - 1)
    return merkle.node_hash(naive_root(leaves[:k]), naive_root(leaves[k:]))


def test_tree_roots_match_the_rfc6962_test_vectors():
    leaves = [merkle.leaf_hash(v) for v in VECTOR]
    for size in range(1, 9):
        tree, nodes = build(leaves[:size])
        assert tree.root().hex() == ROOTS[size - 1] == merkle.root(size, nodes).hex()
    assert merkle.root(0, {}) == merkle.EMPTY_ROOT


def test_every_proof_verifies_and_broken_ones_fail():
    leaves = [merkle.leaf_hash(i.to_bytes(2, "big")) for i in range(37)]
    for size in range(1, 38):
        _, nodes = build(leaves[:size])
        root = naive_root(leaves[:size])
        for index in range(size):
            path = merkle.assemble(merkle.inclusion_ranges(index, size), nodes)
            merkle.verify_inclusion(index, size, leaves[index], path, root)
            bad = [(index + 1, size, leaves[index], path, root) if index + 1 < size else None,  # wrong index
                   (index, size, leaves[index], path, merkle.leaf_hash(b"x")),  # wrong root
                   (index, size, leaves[index], path[:-1], root) if path else None,  # truncated path
                   (index, size, leaves[index], path + [root], root)]  # fmt: skip
            for case in filter(None, bad):
                if case[0] == index + 1 and leaves[index] == leaves[index + 1]:
                    continue
                with pytest.raises(merkle.ProofError):
                    merkle.verify_inclusion(*case)
        for first in range(1, size + 1):
            proof = merkle.assemble(merkle.consistency_ranges(first, size), nodes)
            old_root = naive_root(leaves[:first])
            merkle.verify_consistency(first, size, old_root, root, proof)
            if proof:
                with pytest.raises(merkle.ProofError):
                    merkle.verify_consistency(first, size, old_root, root, proof[:-1])
                with pytest.raises(merkle.ProofError):
                    merkle.verify_consistency(first, size, merkle.leaf_hash(b"other"), root, proof)
    with pytest.raises(merkle.ProofError, match="forked"):
        merkle.verify_consistency(5, 5, leaves[0], leaves[1], [])


def test_checkpoint_note_format_and_signature(tmp_path):
    signer = Signer.from_file(tmp_path / "k.pem", create=True)
    root = merkle.leaf_hash(b"r")
    from datetime import UTC, datetime

    note = sign_checkpoint(signer, origin="example.org/log", size=12, root=root, time=datetime(2026, 1, 2, tzinfo=UTC))
    body, signature = note.split("\n\n")
    assert body.split("\n")[:3] == ["example.org/log", "12", b64(root)]
    assert signature.startswith("\u2014 example.org/log ") and signature.endswith("\n")
    assert len(base64.b64decode(signature.split(" ")[-1])) == 4 + 64  # key id ‖ Ed25519 signature
    checkpoint = verify_checkpoint(note, signer.public_key)
    assert (checkpoint.size, checkpoint.root, checkpoint.time.year) == (12, root, 2026)
    with pytest.raises(NoteError):
        verify_checkpoint(note.replace("\n12\n", "\n13\n"), signer.public_key)
    with pytest.raises(NoteError):
        verify_checkpoint(note, Signer.from_file(tmp_path / "other.pem", create=True).public_key)
    with pytest.raises(NoteError):
        parse_checkpoint("example.org/log\n12\n")


def signer_of(api) -> Signer:
    return api.client.app.state.signer


def seal(api) -> int:
    result = seal_pending(api.session, signer_of(api))
    api.session.commit()
    return result.size


def test_events_are_appended_unsealed_then_sealed_and_proved_to_any_role(api, tmp_path, capsys):
    created = api.client.post("/unlearn-requests", json={"model": "m", "samples": ["tr-cat-000"]}, headers=api.as_(Role.officer)).json()
    auditor = api.as_(Role.auditor)
    subject = {"subject": f"request:{created['id']}"}
    assert all(e["index"] is None for e in api.client.get("/audit-events", params=subject, headers=auditor).json()["items"])
    first = seal(api)
    api.client.post(f"/unlearn-requests/{created['id']}/cancel", headers=api.as_(Role.officer))
    second = seal(api)
    assert second > first
    events = api.client.get("/audit-events", params=subject, headers=auditor).json()["items"]
    assert [e["action"] for e in events] == ["request.received", "request.queued", "request.cancelled"]
    assert all(e["index"] is not None for e in events)
    latest = api.client.get("/audit/checkpoints/latest", headers=api.as_(Role.reviewer)).json()
    assert latest["size"] == second and parse_checkpoint(latest["checkpoint"]).size == second
    assert api.client.get(f"/audit/checkpoints/{first}", headers=api.as_(Role.officer)).json()["size"] == first
    assert api.client.get("/audit/checkpoints/999999", headers=api.as_(Role.officer)).status_code == 404
    officer = api.as_(Role.officer)
    for event in events:
        proof = api.client.get("/audit/proofs/inclusion", params={"index": event["index"]}, headers=officer).json()
        assert proof["size"] == second
        merkle.verify_inclusion(event["index"], second, merkle.leaf_hash(json.dumps(
            {"index": event["index"], "at": event["at"], **{k: event[k] for k in ("actor", "action", "subject", "data")}},
            sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()),
            [base64.b64decode(p) for p in proof["inclusion_proof"]], parse_checkpoint(proof["checkpoint"]).root)  # fmt: skip
    too_far = api.client.get("/audit/proofs/inclusion", params={"index": second, "size": second}, headers=officer)
    assert too_far.status_code == 422
    consistency = api.client.get("/audit/proofs/consistency", params={"first": first, "second": second}, headers=officer).json()
    files = {name: tmp_path / name for name in ("old.json", "new.json", "proof.json", "key.pem")}
    files["old.json"].write_text(json.dumps(api.client.get(f"/audit/checkpoints/{first}", headers=officer).json()))
    files["new.json"].write_text(latest["checkpoint"])  # the bare note works too
    files["proof.json"].write_text(json.dumps(consistency))
    files["key.pem"].write_text(api.client.get("/signing-key").text)
    args = ["verify", "--consistency", str(files["old.json"]), str(files["new.json"]), "--proof", str(files["proof.json"]),
            "--public-key", str(files["key.pem"])]  # fmt: skip
    assert main(args) == Exit.OK
    assert "consistent" in capsys.readouterr().out
    consistency["consistency_proof"] = consistency["consistency_proof"][:-1]  # truncated
    files["proof.json"].write_text(json.dumps(consistency))
    assert main(args) == Exit.FAILED
    # a second checkpoint of the same size with another root, signed by the same key: a fork
    forged = sign_checkpoint(signer_of(api), origin=parse_checkpoint(latest["checkpoint"]).origin, size=second,
                             root=merkle.leaf_hash(b"forged"), time=parse_checkpoint(latest["checkpoint"]).time)  # fmt: skip
    files["old.json"].write_text(forged)
    files["proof.json"].write_text(json.dumps({"consistency_proof": []}))
    assert main(args) == Exit.FAILED
    assert "forked" in capsys.readouterr().out


def test_a_receipt_carries_inclusion_proofs_the_cli_verifies_offline(api, tmp_path, capsys):
    first, _ = run_coalesced_job(api)
    officer = api.as_(Role.officer)
    unsealed = api.client.get(f"/unlearn-requests/{first['id']}/receipt", headers=officer).json()
    assert unsealed["transparency_log"]["events"] and all(e["index"] is None for e in unsealed["transparency_log"]["events"])
    size = seal(api)
    receipt = api.client.get(f"/unlearn-requests/{first['id']}/receipt", headers=officer).json()
    log = receipt["transparency_log"]
    assert log["size"] == size and all(e["index"] is not None and e["inclusion_proof"] for e in log["events"])
    key, path = tmp_path / "key.pem", tmp_path / "receipt.json"
    key.write_text(api.client.get("/signing-key").text)
    path.write_text(json.dumps(receipt))
    assert main(["verify", str(path), "--public-key", str(key)]) == Exit.OK
    assert f"{len(log['events'])} events included in checkpoint size {size} (verified)" in capsys.readouterr().out
    tampered = [
        lambda r: r["transparency_log"]["events"][0]["entry"]["data"].update(evil=True),  # an edited entry
        lambda r: r["transparency_log"]["events"][0].update(index=r["transparency_log"]["events"][0]["index"] + 1),  # wrong index
        lambda r: r["transparency_log"]["events"][0]["inclusion_proof"].pop(),  # truncated path
        lambda r: r["transparency_log"].update(checkpoint=r["transparency_log"]["checkpoint"].replace(f"\n{size}\n", f"\n{size + 1}\n")),
    ]  # fmt: skip
    for change in tampered:
        broken = json.loads(json.dumps(receipt))
        change(broken)
        path.write_text(json.dumps(broken))
        assert main(["verify", str(path), "--public-key", str(key)]) == Exit.FAILED
        assert "INVALID: audit log" in capsys.readouterr().out


def _superuser(api, sql: str, params: dict | None = None) -> None:
    api.session.execute(text("ALTER TABLE audit_events DISABLE TRIGGER audit_events_append_only"))
    api.session.execute(text(sql), params or {})
    api.session.execute(text("ALTER TABLE audit_events ENABLE TRIGGER audit_events_append_only"))
    api.session.commit()


@pytest.mark.parametrize("tamper", ["edit", "delete", "reorder"])
def test_tampering_with_a_sealed_row_is_detected_and_named(api, tmp_path, capsys, tamper):
    for i in range(6):
        record(api.session, actor="test", action="thing.happened", subject=f"thing:{i}", data={"i": i})
    api.session.commit()
    size = seal(api)
    auditor = api.as_(Role.auditor)
    verdict = api.client.get("/audit-events/verify", headers=auditor).json()
    assert verdict["ok"] is True and verdict["size"] == size and verdict["checkpoints"] >= 1
    target = size - 4
    if tamper == "edit":
        _superuser(api, "UPDATE audit_events SET data = '{\"i\": 99}' WHERE leaf_index = :t", {"t": target})
    elif tamper == "delete":
        _superuser(api, "DELETE FROM audit_events WHERE leaf_index = :t", {"t": target})
    else:
        _superuser(api, "UPDATE audit_events SET leaf_index = -leaf_index - 1 WHERE leaf_index IN (:t, :u)", {"t": target, "u": target + 2})
        _superuser(api, "UPDATE audit_events SET leaf_index = CASE WHEN leaf_index = :a THEN :u ELSE :t END "
                        "WHERE leaf_index IN (:a, :b)", {"a": -target - 1, "b": -target - 3, "t": target, "u": target + 2})
    verdict = api.client.get("/audit-events/verify", headers=auditor).json()
    assert verdict["ok"] is False and verdict["first_bad_index"] == target, verdict
    export = tmp_path / "log.jsonl"
    export.write_bytes(api.client.get("/audit/export", headers=auditor).content)
    key = tmp_path / "key.pem"
    key.write_text(api.client.get("/signing-key").text)
    assert main(["audit", "verify", str(export), "--public-key", str(key)]) == Exit.FAILED
    assert f"INVALID at leaf {target}" in capsys.readouterr().out


def test_an_export_re_derives_the_tree_and_rewritten_leaf_hashes_are_caught_by_the_checkpoints(api, tmp_path, capsys):
    for i in range(5):
        record(api.session, actor="test", action="thing.happened", subject=f"thing:{i}", data={"i": i})
    api.session.commit()
    size = seal(api)
    export = tmp_path / "log.jsonl"
    export.write_bytes(api.client.get("/audit/export", headers=api.as_(Role.auditor)).content)
    key = tmp_path / "key.pem"
    key.write_text(api.client.get("/signing-key").text)
    assert main(["audit", "verify", str(export), "--public-key", str(key)]) == Exit.OK
    assert f"{size} leaves re-derived" in capsys.readouterr().out
    lines = [json.loads(line) for line in export.read_text().splitlines()]
    leaf = next(x for x in lines if x.get("entry", {}).get("index") == size - 2)
    leaf["entry"]["actor"] = "mallory"  # rewritten entry and its stored hash: only the signed roots can tell
    leaf["leaf_hash"] = b64(merkle.leaf_hash(json.dumps(leaf["entry"], sort_keys=True, separators=(",", ":")).encode()))
    export.write_text("".join(json.dumps(x) + "\n" for x in lines))
    assert main(["audit", "verify", str(export), "--public-key", str(key)]) == Exit.FAILED
    assert "do not give the root of the signed checkpoint" in capsys.readouterr().out
    forged = sign_checkpoint(signer_of(api), origin="oblivio.local/audit-log", size=size, root=merkle.leaf_hash(b"x"),
                             time=parse_checkpoint(lines[0]["checkpoint"]).time)  # fmt: skip
    export.write_text(json.dumps({"checkpoint": forged}) + "\n" + export.read_text())
    assert main(["audit", "verify", str(export), "--public-key", str(key)]) == Exit.FAILED
    assert "forked" in capsys.readouterr().out


def test_the_log_refuses_edits_but_lets_the_sealer_number_a_row_once(api):
    record(api.session, actor="test", action="x", subject="y")
    api.session.commit()
    with pytest.raises(DBAPIError, match="append-only"):
        api.session.execute(text("UPDATE audit_events SET actor = 'mallory' WHERE leaf_index IS NULL"))
    api.session.rollback()
    seal(api)
    with pytest.raises(DBAPIError, match="append-only"):
        api.session.execute(text("UPDATE audit_events SET leaf_index = leaf_index + 1000000"))
    api.session.rollback()
    with pytest.raises(DBAPIError, match="append-only"):
        api.session.execute(text("DELETE FROM audit_checkpoints"))
    api.session.rollback()


def _chained(seq: int, prev: str, at: str) -> dict:
    row = {"seq": seq, "at": at, "actor": "legacy", "action": "old.event", "subject": f"old:{seq}", "data": {"n": seq}}
    return {**row, "prev_hash": prev, "hash": digest({**row, "prev_hash": prev})}


def test_migration_seals_the_chain_and_one_leader_seals_whatever_commits_in_whatever_order(tmp_path):
    url = fresh_database("oblivio_translog")
    settings = Settings(database_url=url, home=tmp_path)
    upgrade(settings, "0008_validation_progress")
    engine = create_engine(url)
    prev, rows = "0" * 64, []
    for seq in (1, 2, 3):
        rows.append(_chained(seq, prev, "2026-11-01T10:00:00+00:00"))
        prev = rows[-1]["hash"]
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO audit_events (seq, at, actor, action, subject, data, prev_hash, hash) VALUES "
                          "(:seq, :at, :actor, :action, :subject, :data, :prev_hash, :hash)"),
                     [{**r, "data": json.dumps(r["data"])} for r in rows])  # fmt: skip
    upgrade(settings)
    signer = Signer.from_file(tmp_path / "k.pem", create=True)
    leader = Sealer(engine, signer, origin="test/log", interval=3600, batch=2)
    other = Sealer(engine, signer, origin="test/log", interval=3600, batch=2)
    try:
        assert leader.run_once() == 0 and leader._leader is not None  # the 3 chained events became leaves 0..2
        assert other.run_once() == 0 and other._leader is None  # not the leader: does nothing
        with Session(engine) as early, Session(engine) as late:
            record(early, actor="t", action="early", subject="s")
            early.flush()
            early.connection().execute(text("INSERT INTO audit_events (at, actor, action, subject, data) "
                                            "VALUES (now(), 't', 'early', 's', '{}')"))  # takes an id, stays open
            record(late, actor="t", action="late", subject="s")
            late.commit()  # a larger id commits first
            assert leader.run_once() == 1
            early.commit()
        assert leader.run_once() == 2  # two batches' worth, the lower ids sealed after the higher one
        with Session(engine) as session:
            order = session.execute(text("SELECT action FROM audit_events ORDER BY leaf_index")).scalars().all()
            assert order == ["old.event"] * 3 + ["late", "early", "early"]
            from service.audit.logstore import verify_tree

            check = verify_tree(session, signer.public_key)
            assert check.ok and check.size == 6 and check.checkpoints == 3, check
            notes = session.execute(text("SELECT note FROM audit_checkpoints ORDER BY size")).scalars().all()
        ok, why = verify_consistency_notes(notes[0], notes[-1], [], signer.public_key)
        assert not ok  # an empty proof between different sizes
        leader.release()
        assert other.run_once() == 0 and other._leader is not None  # took over
        stop = threading.Event()
        stop.set()
        other.run_forever(stop)  # returns at once and lets go
        assert other._leader is None
    finally:
        leader.release()
        other.release()
        engine.dispose()


def test_the_demo_prints_its_requests_inclusion_proofs_as_verified(api, tmp_path, capsys):
    from worker.demo import _audit_proofs

    first, _ = run_coalesced_job(api)
    seal(api)
    key = tmp_path / "key.pem"
    key.write_text(api.client.get("/signing-key").text)
    api.client.headers.update(api.as_(Role.admin))
    _audit_proofs(api.client, first["id"], tmp_path, key)
    out = capsys.readouterr().out
    assert f"events of request {first['id'][:8]} included in checkpoint size" in out and "(verified)" in out, out
    assert json.loads((tmp_path / f"{first['id']}.receipt.json").read_text())["transparency_log"]["events"]


def test_embedded_sqlite_migrates_the_chain_and_seals(tmp_path):
    settings = Settings(home=tmp_path)
    upgrade(settings, "0008_validation_progress")
    engine = create_engine(settings.database_url)
    prev, rows = "0" * 64, []
    for seq in (1, 2):
        rows.append(_chained(seq, prev, "2026-11-01T10:00:00+00:00"))
        prev = rows[-1]["hash"]
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO audit_events (seq, at, actor, action, subject, data, prev_hash, hash) VALUES "
                          "(:seq, '2026-11-01 10:00:00.000000', :actor, :action, :subject, :data, :prev_hash, :hash)"),
                     [{**r, "data": json.dumps(r["data"])} for r in rows])  # fmt: skip
    upgrade(settings)
    signer = Signer.from_file(tmp_path / "k.pem", create=True)
    sealer = Sealer(engine, signer, origin="test/log", interval=3600, batch=10)
    with Session(engine) as session:
        record(session, actor="t", action="new", subject="s")
        session.commit()
    assert sealer.run_once() == 1
    from service.audit.logstore import verify_tree

    with Session(engine) as session:
        check = verify_tree(session, signer.public_key)
        assert check.ok and check.size == 3 and check.checkpoints == 1, check
        session.execute(text("UPDATE audit_events SET actor = 'mallory' WHERE leaf_index = 1"))  # no triggers on SQLite
        session.commit()
        assert verify_tree(session, signer.public_key).first_bad_index == 1
    engine.dispose()


def test_inclusion_proofs_verify_with_sigstores_independent_rfc6962_code():
    """Interop: the audit paths we serve check out with sigstore-python's own RFC 6962 verifier (installed
    with model-signing). (Checkpoints were checked once with Go's golang.org/x/mod/sumdb/note: see README.)"""
    from sigstore._internal.merkle import _chain_border_right, _chain_inner, _decomp_inclusion_proof

    leaves = [merkle.leaf_hash(f"entry {i}".encode()) for i in range(23)]
    for size in (1, 2, 5, 16, 23):
        _, nodes = build(leaves[:size])
        root = naive_root(leaves[:size])
        for index in range(size):
            proof = merkle.assemble(merkle.inclusion_ranges(index, size), nodes)
            inner, _border = _decomp_inclusion_proof(index, size)
            assert _chain_border_right(_chain_inner(leaves[index], proof[:inner], index), proof[inner:]) == root
