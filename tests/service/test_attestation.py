"""DSSE envelopes and in-toto statements derived from a report body; offline verification."""

import base64
import copy

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from service.audit.attestation import SLSA_PROVENANCE, STATEMENT_TYPE, VERDICT_PREDICATE, statements
from service.audit.canonical import digest
from service.audit.dsse import pae, sign_statement, verify_envelope
from service.audit.offline import verify_document
from service.audit.signing import Signer

BODY = {
    "schema": "oblivio.report/1", "created_at": "2026-12-03T18:00:00+00:00", "code_version": "0.1.0",
    "outcome": "published", "error": None,
    "job": {"id": "j-1", "model": "fmnist-mae", "family": "mae", "method": "encoder_l2", "mode": "retain_free",
            "attempt": 1, "config": {"lr": 0.001}},
    "requests": [{"id": "r-1", "samples": [{"sample_key": "s1"}]}, {"id": "r-2", "samples": []}],
    "data_read": {"forget": {"dataset": "train", "count": 1, "digest": "f" * 64},
                  "retain": {"dataset": "proxy", "count": 9, "digest": "e" * 64, "source": "proxy"},
                  "retained_training_samples_read": 0},
    "checkpoints": {"base": {"version": 1, "digest": "b" * 64}, "new": {"version": 2, "digest": "c" * 64}},
    "metrics": {"forget": {}}, "gate": {"passed": True}, "worker": {"host": "gpu-7", "torch": "2.13.0"},
}


def test_pae_matches_the_dsse_specification_example():
    assert pae("http://example.com/HelloWorld", b"hello world") == b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"


def test_statements_name_the_artifacts_their_inputs_and_the_verdict():
    provenance, verdict = statements(BODY, report_digest=digest(BODY))
    assert provenance["_type"] == verdict["_type"] == STATEMENT_TYPE
    assert provenance["predicateType"] == SLSA_PROVENANCE and verdict["predicateType"] == VERDICT_PREDICATE
    assert {"name": "fmnist-mae-v2.safetensors", "digest": {"sha256": "c" * 64}} in provenance["subject"]
    assert {"name": "oblivio-report-j-1.json", "digest": {"sha256": digest(BODY)}} in provenance["subject"]
    build = provenance["predicate"]["buildDefinition"]
    assert {d["name"]: d["digest"]["sha256"] for d in build["resolvedDependencies"]} == {
        "base-checkpoint": "b" * 64, "forget-manifest": "f" * 64, "retain-manifest": "e" * 64}
    assert build["externalParameters"]["requests"] == ["r-1", "r-2"]
    assert provenance["predicate"]["runDetails"]["builder"]["id"] == "urn:oblivio:worker:gpu-7"
    assert verdict["predicate"]["outcome"] == "published" and verdict["predicate"]["gate"] == {"passed": True}


def test_a_failed_job_attests_its_report_only():
    failed = {**BODY, "outcome": "gate_failed", "checkpoints": {**BODY["checkpoints"], "new": None}}
    provenance, _ = statements(failed, report_digest=digest(failed))
    assert [s["name"] for s in provenance["subject"]] == ["oblivio-report-j-1.json"]


def test_envelopes_verify_with_the_service_key_and_fail_when_touched():
    signer, other = Signer(Ed25519PrivateKey.generate()), Signer(Ed25519PrivateKey.generate())
    envelopes = [sign_statement(s, signer) for s in statements(BODY, report_digest=digest(BODY))]
    ok, _, statement = verify_envelope(envelopes[0], signer.public_key)
    assert ok and statement["predicateType"] == SLSA_PROVENANCE
    assert verify_document(envelopes, signer.public_key)[0] is True
    assert verify_document(envelopes, other.public_key) == (False, f"envelope 0: no signature by key {other.key_id}")

    tampered = copy.deepcopy(envelopes)
    payload = base64.b64decode(tampered[1]["payload"]).replace(b"published", b"publishe_")
    tampered[1]["payload"] = base64.b64encode(payload).decode()
    assert verify_document(tampered, signer.public_key) == (False, "envelope 1: DSSE signature does not match the payload")
    retyped = copy.deepcopy(envelopes[0]) | {"payloadType": "text/plain"}
    assert verify_envelope(retyped, signer.public_key)[0] is False


def test_report_documents_still_verify_and_a_wrong_digest_is_caught():
    signer = Signer(Ed25519PrivateKey.generate())
    document = {"body": BODY, "digest": digest(BODY), "signature": signer.sign(BODY)}
    assert verify_document(document, signer.public_key) == (True, "signature valid")
    assert verify_document(document | {"digest": "0" * 64}, signer.public_key)[0] is False
