"""GET /metrics parses as Prometheus text and follows what happens: traffic, submissions, request state."""

import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from service.audit.sealer import seal_pending
from service.db.enums import FailureReason, Role
from service.domain.jobs import fail_job
from service.domain.requests import get_request
from worker.metrics import WorkerMetrics


def scrape(api) -> dict[tuple[str, tuple], float]:
    response = api.client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(samples, name: str, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_a_submission_moves_request_state_queue_depth_and_counters(api):
    before = scrape(api)
    assert value(before, "oblivio_database_up") == 1
    assert value(before, "oblivio_unlearn_requests", model="m", status="queued") == 0
    assert ("oblivio_unlearn_requests", (("model", "m"), ("status", "completed"))) in before  # zeros are exported

    created = api.client.post("/unlearn-requests", json={"model": "m", "classes": ["cat"]}, headers=api.as_(Role.officer))
    assert created.status_code == 201
    refused = api.client.post("/unlearn-requests", json={"model": "m", "classes": ["unicorn"]}, headers=api.as_(Role.officer))
    assert refused.status_code == 422

    after = scrape(api)
    assert value(after, "oblivio_unlearn_requests", model="m", status="queued") == 1
    assert value(after, "oblivio_jobs", model="m", status="queued") == 1
    assert value(after, "oblivio_queue_depth", stage="jobs") == 1
    assert value(after, "oblivio_queue_depth", stage="audit") >= 2  # received and queued, not sealed yet
    seal_pending(api.session, api.client.app.state.signer)
    api.session.commit()
    assert value(scrape(api), "oblivio_queue_depth", stage="audit") == 0
    assert value(after, "oblivio_submissions_total", outcome="created") == 1
    assert value(after, "oblivio_submissions_total", outcome="refused") == 1
    assert value(after, "oblivio_submission_duration_seconds_count") == 2
    assert value(after, "oblivio_model_versions", model="m", status="published") == 1
    assert value(after, "oblivio_model_current_version", model="m") == 1


def test_http_traffic_is_counted_by_route_template_not_raw_path(api):
    for _ in range(3):
        api.client.get("/models/m", headers=api.as_(Role.auditor))
    api.client.get("/models/ghost", headers=api.as_(Role.auditor))
    api.client.get("/no/such/path")
    samples = scrape(api)
    assert value(samples, "oblivio_http_requests_total", method="GET", route="/models/{name}", status="200") == 3
    assert value(samples, "oblivio_http_requests_total", method="GET", route="/models/{name}", status="404") == 1
    assert value(samples, "oblivio_http_requests_total", method="GET", route="unmatched", status="404") == 1
    assert value(samples, "oblivio_http_request_duration_seconds_count", method="GET", route="/models/{name}") == 4
    assert not any("ghost" in str(labels) for _name, labels in samples)


def test_gate_failures_and_failure_reasons_come_from_the_database(api):
    filed = api.client.post("/unlearn-requests", json={"model": "m", "classes": ["dog"]}, headers=api.as_(Role.officer))
    request_id = filed.json()["id"]
    job_id = get_request(api.session, request_id=request_id).job_id
    fail_job(api.session, job_id=job_id, reason=FailureReason.gate_failed, detail="gate failed: test", actor="test")
    api.session.commit()
    samples = scrape(api)
    assert value(samples, "oblivio_gate_failures", model="m") == 1
    assert value(samples, "oblivio_request_failures", model="m", reason="gate_failed") == 1
    assert value(samples, "oblivio_unlearn_requests", model="m", status="failed") == 1


def test_a_database_outage_is_a_gauge_not_a_failed_scrape(api):
    def broken():
        raise ConnectionError("database down")

    api.client.app.state.sessions = broken
    api.client.get("/healthz")
    samples = scrape(api)
    assert value(samples, "oblivio_database_up") == 0
    assert value(samples, "oblivio_http_requests_total", method="GET", route="/healthz", status="200") == 1


@pytest.mark.parametrize("outcome", ["published", "gate_failed"])
def test_worker_metrics_record_duration_steps_and_rate(outcome):
    metrics = WorkerMetrics(CollectorRegistry())
    metrics.record(outcome, seconds=12.5, steps=600, loop_seconds=4.0 if outcome == "published" else None)
    metrics.record("held", seconds=0.01, steps=0, loop_seconds=None)
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(metrics.exposition().decode())
        for s in family.samples
    }
    assert value(samples, "oblivio_worker_jobs_total", outcome=outcome) == 1
    assert value(samples, "oblivio_worker_jobs_total", outcome="held") == 1
    assert value(samples, "oblivio_worker_job_duration_seconds_count", outcome=outcome) == 1
    assert value(samples, "oblivio_worker_job_duration_seconds_count", outcome="held") == 0  # never ran
    assert value(samples, "oblivio_worker_steps_total") == 600
    expected_rate = 150.0 if outcome == "published" else 0.0
    assert value(samples, "oblivio_worker_steps_per_second") == expected_rate
