"""Evidence auditors' own tools read: DSSE/in-toto attestations and model-signing, through a real worker."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from service.audit.attestation import SLSA_PROVENANCE, VERDICT_PREDICATE
from service.audit.dsse import verify_envelope
from service.audit.signing import load_public_pem
from service.db.enums import Role
from tests.e2e.stack import launch
from tests.e2e.test_end_to_end import follow, register_demo_data

pytestmark = pytest.mark.integration


def model_signing_cli(*args: str) -> subprocess.CompletedProcess:
    command = [str(Path(sys.executable).with_name("model_signing")), "verify", "key", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


def oblivio_verify(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "service.cli", "verify", *args], capture_output=True, text=True,
                          timeout=120)


def test_published_version_carries_attestations_and_a_model_signature(tmp_path):
    stack = launch("embedded", tmp_path)
    try:
        register_demo_data(stack)
        officer, auditor = stack.client(Role.officer), stack.client(Role.auditor)
        created = officer.post("/unlearn-requests", json={"model": "tiny", "samples": ["tr-square-000"],
                                                         "config": {"steps": 40}})
        assert created.status_code == 201, created.text
        final, _ = follow(auditor, created.json()["id"])
        assert final["status"] == "completed", (final, stack.log_tail())
        job_id = final["job"]["id"]

        envelopes = auditor.get(f"/jobs/{job_id}/attestations").json()
        public_key = load_public_pem(auditor.get("/signing-key").text)
        statements = []
        for envelope in envelopes:
            ok, reason, statement = verify_envelope(envelope, public_key)
            assert ok, reason
            statements.append(statement)
        provenance, verdict = statements
        assert provenance["predicateType"] == SLSA_PROVENANCE and verdict["predicateType"] == VERDICT_PREDICATE
        base, version = auditor.get("/models/tiny/versions").json()
        assert {"name": "tiny-v2.safetensors", "digest": {"sha256": version["checkpoint_digest"]}} in provenance["subject"]
        dependencies = {d["name"]: d["digest"]["sha256"] for d in provenance["predicate"]["buildDefinition"]["resolvedDependencies"]}
        assert dependencies["base-checkpoint"] == base["checkpoint_digest"]
        report = auditor.get(f"/unlearn-requests/{final['id']}/report").json()
        assert dependencies["forget-manifest"] == report["body"]["data_read"]["forget"]["digest"]
        assert provenance["predicate"]["buildDefinition"]["externalParameters"]["requests"] == [final["id"]]
        assert verdict["predicate"]["report"]["digest"]["sha256"] == report["digest"]
        assert verdict["predicate"]["outcome"] == "published"

        (tmp_path / "attestations.json").write_text(json.dumps(envelopes))
        (tmp_path / "signing-key.pem").write_text(auditor.get("/signing-key").text)
        ok = oblivio_verify(str(tmp_path / "attestations.json"), "--public-key", str(tmp_path / "signing-key.pem"))
        assert ok.returncode == 0 and "2 DSSE envelope(s) valid" in ok.stdout, ok.stdout + ok.stderr

        model = tmp_path / "downloaded.safetensors"
        model.write_bytes(auditor.get("/models/tiny/versions/2/checkpoint").content)
        signature = tmp_path / "tiny-v2.sig"
        signature.write_bytes(auditor.get("/models/tiny/versions/2/signature").content)
        ec_key = tmp_path / "model-signing-key.pem"
        ec_key.write_text(auditor.get("/model-signing-key").text)
        verified = model_signing_cli("--signature", str(signature), "--public_key", str(ec_key), str(model))
        assert verified.returncode == 0, verified.stdout + verified.stderr
        ours = oblivio_verify("--checkpoint", str(model), "--signature", str(signature), "--public-key", str(ec_key))
        assert ours.returncode == 0, ours.stdout + ours.stderr

        data = model.read_bytes()
        model.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))  # one bit changed
        assert model_signing_cli("--signature", str(signature), "--public_key", str(ec_key), str(model)).returncode != 0
        assert oblivio_verify("--checkpoint", str(model), "--signature", str(signature), "--public-key",
                              str(ec_key)).returncode != 0
        assert auditor.get("/models/tiny/versions/1/signature").status_code == 404  # the uploader's base
    finally:
        stack.stop()
