"""The `oblivio` command as a subprocess against a running stack (uvicorn + Celery worker, Postgres + Redis)."""

import json
import shlex
import subprocess
import sys

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from service.cli import Exit
from service.db.enums import Role
from tests.e2e.stack import free_port, launch
from tests.e2e.test_end_to_end import register_demo_data
from worker.demo import oblivio_command

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    metrics_port = free_port()
    stack = launch("postgres", tmp_path_factory.mktemp("cli"), extra_env={"OBLIVIO_WORKER_METRICS_PORT": str(metrics_port)})
    stack.worker_metrics = f"http://127.0.0.1:{metrics_port}/metrics"
    register_demo_data(stack)
    yield stack
    stack.stop()


def oblivio(stack, *argv: str, role: Role = Role.officer, key: str | None = None, timeout: float = 240):
    env = {**stack.env, "OBLIVIO_URL": stack.url, "OBLIVIO_API_KEY": key or stack.keys[role]}
    return subprocess.run([sys.executable, "-m", "service.cli", *argv], env=env, capture_output=True, text=True,
                          timeout=timeout)


def samples(url: str) -> dict[tuple[str, tuple], float]:
    text = httpx.get(url, timeout=5).text
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def test_submit_watch_report_and_verify(stack, tmp_path):
    submitted = oblivio(stack, "submit", "tr-square-000", "--class", "circle", "--model", "tiny", "--json")
    assert submitted.returncode == Exit.OK, submitted.stderr
    request_id = json.loads(submitted.stdout)["id"]
    status = oblivio(stack, "status", request_id)
    assert status.returncode == Exit.OK and f"request   {request_id}" in status.stdout
    listed = oblivio(stack, "list", "--model", "tiny", "--json")
    assert request_id in [r["id"] for r in json.loads(listed.stdout)["items"]]

    watched = oblivio(stack, "watch", request_id, "--progress", "--interval", "0.2")
    assert watched.returncode == Exit.OK, watched.stdout + watched.stderr + stack.log_tail()
    assert "status    completed" in watched.stdout and "version   v2" in watched.stdout
    assert "/600" in watched.stderr and "status=completed" in watched.stderr  # the bar reached the last step
    assert "step/s" in watched.stderr and "it/s" not in watched.stderr  # the job's own rate, not the terminal's polling

    report = tmp_path / "report.json"
    saved = oblivio(stack, "report", request_id, "-o", str(report), role=Role.auditor)
    assert saved.returncode == Exit.OK and str(report) in saved.stdout
    assert json.loads(report.read_text())["body"]["outcome"] == "published"
    public_key = tmp_path / "key.pem"
    public_key.write_text(stack.client(Role.auditor).get("/signing-key").text)
    assert oblivio(stack, "signing-key", role=Role.auditor).stdout == public_key.read_text()
    verified = oblivio(stack, "verify", str(report), "--public-key", str(public_key))
    assert (verified.returncode, verified.stdout.strip()) == (Exit.OK, "OK: signature valid")
    elsewhere = tmp_path / "elsewhere"  # the demo's printed command, run as a newcomer would: no venv on PATH
    elsewhere.mkdir()
    printed = f"{oblivio_command()} verify {report} --public-key {public_key}"
    env = {k: v for k, v in stack.env.items() if k != "PATH"} | {"PATH": "/usr/bin:/bin"}
    ran = subprocess.run(shlex.split(printed), env=env, cwd=elsewhere, capture_output=True, text=True, timeout=120)
    assert (ran.returncode, ran.stdout.strip()) == (Exit.OK, "OK: signature valid"), printed + ran.stderr
    tampered = tmp_path / "tampered.json"
    tampered.write_text(report.read_text().replace('"published"', '"gate_failed"', 1))
    assert oblivio(stack, "verify", str(tampered), "--public-key", str(public_key)).returncode == Exit.FAILED

    html = oblivio(stack, "report", request_id, "--html", role=Role.auditor)
    assert html.returncode == Exit.OK and "PASSED" in html.stdout


def test_models_after_a_job(stack):
    listed = oblivio(stack, "models", "list", "--json")
    assert [(m["name"], m["current_version"]) for m in json.loads(listed.stdout)] == [("tiny", 2)]
    versions = oblivio(stack, "models", "versions", "tiny")
    rows = [line.split()[:5] for line in versions.stdout.splitlines()[1:]]
    digests = [v["checkpoint_digest"][:16] for v in stack.client(Role.auditor).get("/models/tiny/versions").json()]
    assert rows == [["v1", "-", "superseded", "no", digests[0]], ["v2", "v1", "published", "yes", digests[1]]]


def test_not_found_wrong_key_and_unreachable_exit_codes(stack):
    missing = oblivio(stack, "status", "00000000-0000-4000-8000-000000000000")
    assert missing.returncode == Exit.NOT_FOUND and missing.stderr.startswith("error: NotFound:")
    wrong = oblivio(stack, "list", key="obl_00000000_not-a-key")
    assert wrong.returncode == Exit.AUTH and "Traceback" not in wrong.stderr
    down = oblivio(stack, "--url", f"http://127.0.0.1:{free_port()}", "list")
    assert down.returncode == Exit.UNREACHABLE and "cannot reach the Oblivio API" in down.stderr


def test_bootstrap_key_straight_into_the_database(stack):
    created = oblivio(stack, "keys", "create", "--direct", "--name", "ops", "--role", "auditor", "--json")
    assert created.returncode == Exit.OK, created.stderr
    key = json.loads(created.stdout)
    assert key["role"] == "auditor" and key["key"].startswith("obl_")
    assert oblivio(stack, "models", "list", key=key["key"]).returncode == Exit.OK


def test_worker_metrics_and_json_logs_name_the_job(stack):
    worker = samples(stack.worker_metrics)
    assert worker[("oblivio_worker_jobs_total", (("outcome", "published"),))] == 1
    assert worker[("oblivio_worker_job_duration_seconds_count", (("outcome", "published"),))] == 1
    job = stack.client(Role.auditor).get("/unlearn-requests", params={"model": "tiny"}).json()["items"][0]["job"]
    assert 0 < worker[("oblivio_worker_steps_total", ())] == job["progress"]["step"] <= 600  # the probe may stop early
    assert worker[("oblivio_worker_steps_per_second", ())] > 0
    api = samples(f"{stack.url}/metrics")
    assert api[("oblivio_unlearn_requests", (("model", "tiny"), ("status", "completed")))] == 1
    assert api[("oblivio_model_versions", (("model", "tiny"), ("status", "published")))] == 1
    assert api[("oblivio_submissions_total", (("outcome", "created"),))] == 1

    job_id = stack.client(Role.auditor).get("/unlearn-requests", params={"model": "tiny"}).json()["items"][0]["job"]["id"]
    lines = [json.loads(line) for line in (stack.logs / "worker.log").read_text().splitlines()]  # every line is JSON
    about_job = [line for line in lines if line.get("job_id") == job_id]
    assert {"oblivio.worker", "oblivio.pipeline"} <= {line["logger"] for line in about_job}
    assert any(line.get("outcome") == "published" for line in about_job)
