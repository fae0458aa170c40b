"""A job's report as in-toto Statements: SLSA Provenance v1, and Oblivio's own verdict predicate.

Both statements are derived from the signed report body alone, so anyone holding the report can
re-derive them and compare. Subjects: the report itself (by its canonical digest) and, when the job
published, the new checkpoint file as downloaded (``<model>-v<N>.safetensors``).

Provenance (https://slsa.dev/spec/v1.0/provenance): the builder is the worker that ran the job;
``externalParameters`` are what the officers asked for (request ids, method, mode, configuration);
``resolvedDependencies`` are the base checkpoint and the manifests of what was read (forget set,
retain or proxy set), each by digest.
"""

from typing import Any

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
SLSA_PROVENANCE = "https://slsa.dev/provenance/v1"
VERDICT_PREDICATE = "https://oblivio.dev/attestations/unlearning-verdict/v1"
BUILD_TYPE = "https://oblivio.dev/buildtypes/unlearn-job/v1"


def statements(body: dict[str, Any], *, report_digest: str) -> list[dict[str, Any]]:
    subject = _subjects(body, report_digest)
    return [
        {"_type": STATEMENT_TYPE, "subject": subject, "predicateType": SLSA_PROVENANCE, "predicate": _provenance(body)},
        {"_type": STATEMENT_TYPE, "subject": subject, "predicateType": VERDICT_PREDICATE,
         "predicate": _verdict(body, report_digest)},
    ]


def _subjects(body: dict[str, Any], report_digest: str) -> list[dict[str, Any]]:
    job = body["job"]
    found = [{"name": f"oblivio-report-{job['id']}.json", "digest": {"sha256": report_digest}}]
    new = (body.get("checkpoints") or {}).get("new")
    if new:
        found.append({"name": f"{job['model']}-v{new['version']}.safetensors", "digest": {"sha256": new["digest"]}})
    return found


def _provenance(body: dict[str, Any]) -> dict[str, Any]:
    job, base = body["job"], body["checkpoints"]["base"]
    dependencies = [{
        "name": "base-checkpoint",
        "uri": f"oblivio:models/{job['model']}/versions/{base['version']}",
        "digest": {"sha256": base["digest"]},
    }]
    read = body.get("data_read") or {}
    for part in ("forget", "retain"):
        if read.get(part):
            dependencies.append({
                "name": f"{part}-manifest",
                "uri": f"oblivio:datasets/{read[part]['dataset']}",
                "digest": {"sha256": read[part]["digest"]},
                "annotations": {"count": read[part]["count"], "source": read[part].get("source", part)},
            })
    worker = body.get("worker") or {}
    return {
        "buildDefinition": {
            "buildType": BUILD_TYPE,
            "externalParameters": {
                "requests": [r["id"] for r in body.get("requests", [])],
                "model": job["model"], "method": job["method"], "mode": job["mode"], "config": job["config"],
            },
            "internalParameters": {"job": job["id"], "attempt": job["attempt"], "family": job["family"]},
            "resolvedDependencies": dependencies,
        },
        "runDetails": {
            "builder": {
                "id": f"urn:oblivio:worker:{worker.get('host', 'unknown')}",
                "version": {"oblivio": body.get("code_version"), "torch": worker.get("torch")},
            },
            "metadata": {"invocationId": job["id"], "finishedOn": body["created_at"]},
        },
    }


def _verdict(body: dict[str, Any], report_digest: str) -> dict[str, Any]:
    return {
        "report": {"schema": body.get("schema"), "digest": {"sha256": report_digest}},
        "outcome": body["outcome"],
        "error": body.get("error"),
        "requests": [r["id"] for r in body.get("requests", [])],
        "checkpoints": body.get("checkpoints"),
        "gate": body.get("gate"),
        "metrics": body.get("metrics") or {},
        "retained_training_samples_read": (body.get("data_read") or {}).get("retained_training_samples_read"),
    }
