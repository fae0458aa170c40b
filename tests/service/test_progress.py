"""The progress line of `oblivio watch` and the demo, and the advice after a gate failure (pure functions)."""

from service.cli.advice import after_gate_failure, failed_checks
from service.cli.progress import duration, eta_seconds, postfix, progress_of


def request(status: str = "running", job_status: str = "running", **progress) -> dict:
    job = {"status": job_status,
           "progress": {"phase": None, "step": 0, "total": 0, "steps_per_second": None, "losses": {}, **progress}}
    return {"status": status, "job": job if progress else None}


def test_building_teacher_targets_is_a_phase_not_step_one_and_has_no_eta():
    view = progress_of(request(phase="building teacher targets"))
    assert (view.phase, view.step, view.total, view.eta_seconds) == ("building teacher targets", 0, 0, None)
    assert postfix(view, "running", {}) == {"status": "running", "phase": "building teacher targets"}


def test_the_eta_comes_from_the_workers_unlearning_rate_only():
    view = progress_of(request(phase="unlearning", step=1, total=600, steps_per_second=40.0))
    assert view.eta_seconds == 599 / 40.0
    assert postfix(view, "running", {"loss": 0.123456}) == {
        "status": "running", "phase": "unlearning", "rate": "40 step/s", "eta": "0:00:15", "loss": "0.1235"}
    assert eta_seconds("evaluating", 600, 600, 40.0) is None
    assert eta_seconds("unlearning", 5, 600, None) is None and eta_seconds("unlearning", 5, 600, 0.0) is None


def test_a_coalesced_request_seen_after_its_job_finished_shows_the_jobs_own_rate():
    finished = request(status="completed", job_status="succeeded", phase="publishing", step=600, total=600,
                       steps_per_second=45.2)
    view = progress_of(finished)
    assert (view.phase, view.step, view.total, view.rate, view.eta_seconds) == ("completed", 600, 600, 45.2, None)
    assert postfix(view, "completed", {}) == {"status": "completed", "rate": "45.2 step/s"}


def test_before_a_worker_claims_the_job_the_status_is_the_phase():
    view = progress_of({"status": "queued", "job": None})
    assert (view.phase, view.total) == ("queued", 0)
    assert postfix(view, "queued", {}) == {"status": "queued"}


def test_duration_reads_hours_minutes_seconds():
    assert [duration(s) for s in (0, 59.6, 3600 + 62, 6 * 3600 + 51 * 60 + 20)] == ["0:00:00", "0:01:00", "1:01:02", "6:51:20"]


DETAIL = ("gate failed: forget_min_psnr_drop (value 1.234, threshold 2.0), "
          "retain_max_cosine_drop (value 0.05, threshold 0.02)")


def test_after_a_gate_failure_the_officer_is_told_which_check_failed_and_the_options():
    failed = {"id": "r1", "status": "failed", "reason": "gate_failed", "reason_detail": DETAIL, "model": "m",
              "samples": ["tr-1", "tr-2"], "classes": ["bag"]}
    assert failed_checks(DETAIL) == [("forget_min_psnr_drop", "1.234", "2.0"), ("retain_max_cosine_drop", "0.05", "0.02")]
    lines = after_gate_failure(failed, report="/reports/r1.json")
    assert lines[0] == "the publish gate refused the result: forget_min_psnr_drop was 1.234, at least 2.0 is required"
    assert lines[1] == "the publish gate refused the result: retain_max_cosine_drop was 0.05, at most 0.02 is required"
    assert "oblivio submit tr-1 tr-2 --class bag --model m --steps N" in lines[2]
    assert "--mode with_retain" in lines[3]
    assert "--method gradient_surgery" in lines[4] and "gate_thresholds" in lines[5]
    assert lines[-1].endswith("/reports/r1.json")
    assert after_gate_failure({**failed, "reason": "job_error"}, report="x") == []


def test_after_a_samplers_gate_failure_the_advice_keeps_its_method_and_names_no_masked_one():
    detail = ("gate failed: sampler_class_max_share_ratio (value 0.9, threshold 0.75), "
              "sampler_retain_max_frechet_increase (value 0.61, threshold 0.5)")  # fmt: skip
    failed = {"id": "r2", "status": "failed", "reason": "gate_failed", "reason_detail": detail, "model": "fmnist-gan",
              "samples": [], "classes": ["sandal"], "method": "gan_cascade"}  # fmt: skip
    lines = after_gate_failure(failed, report="/reports/r2.json")
    assert lines[0] == "the publish gate refused the result: sampler_class_max_share_ratio was 0.9, at most 0.75 is required"
    again = "oblivio submit --class sandal --model fmnist-gan --method gan_cascade --steps N"
    assert lines[2].startswith("forget harder") and again in lines[2]
    assert lines[3].startswith("change less") and again in lines[3]
    assert not any("gradient_surgery" in line or "with_retain" in line for line in lines)  # refused for a sampler (422)
    assert "gate_thresholds" in lines[4] and lines[5].endswith("/reports/r2.json") and len(lines) == 6
