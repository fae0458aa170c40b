"""The `oblivio` command line against the in-process API: output, --json, friendly errors and exit codes."""

import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from service.cli import Exit, main
from service.db.enums import Role
from tests.e2e.stack import free_port


@pytest.fixture
def cli(api, capsys):
    """Run `oblivio --api-key <role's key> ARGS...` in-process; returns (exit code, stdout, stderr)."""

    def run(*argv: str, role: Role | None = Role.officer, key: str | None = None) -> tuple[int, str, str]:
        token = key or (api.keys[role] if role else None)
        code = main([*(["--api-key", token] if token else []), *argv], http=api.client)
        out, err = capsys.readouterr()
        return code, out, err

    return run


def test_submit_from_arguments_a_file_and_classes_then_status_and_replay(cli, tmp_path):
    keys_file = tmp_path / "keys.txt"
    keys_file.write_text("# officer's list\ntr-dog-001\n\n  tr-dog-002  \n")
    code, out, err = cli("submit", "tr-cat-000", "--samples-file", str(keys_file), "--class", "fox", "--model", "m",
                         "--idempotency-key", "dsr-1", "--external-id", "ext-1", "--json")
    assert (code, err) == (Exit.OK, "")
    request = json.loads(out)
    assert request["samples"] == ["tr-cat-000", "tr-dog-001", "tr-dog-002"]
    assert request["classes"] == ["fox"] and request["external_id"] == "ext-1" and request["status"] == "queued"

    code, out, _ = cli("submit", "tr-cat-000", "--samples-file", str(keys_file), "--class", "fox", "--model", "m",
                       "--idempotency-key", "dsr-1", "--external-id", "ext-1")
    assert code == Exit.OK
    assert out.startswith(f"already filed (replay): request {request['id']} queued")

    code, out, _ = cli("status", request["id"])
    assert code == Exit.OK
    assert f"request   {request['id']}  (external id ext-1)" in out
    assert "status    queued" in out and "class fox; 3 samples (tr-cat-000, tr-dog-001, tr-dog-002)" in out
    assert "settings  lr=0.001 alpha=0.25 steps=600 batch_size=64 " in out and "params={}" in out
    code, out, _ = cli("status", request["id"], "--json")  # global options are accepted after the command too
    assert json.loads(out)["id"] == request["id"]


def test_list_filters_pages_and_follows_the_cursor(cli):
    ids = [json.loads(cli("submit", f"tr-cat-00{i}", "--model", "m", "--json")[1])["id"] for i in range(3)]
    code, out, _ = cli("list", "--limit", "2")
    assert code == Exit.OK
    lines = out.splitlines()
    assert lines[0].split() == ["ID", "STATUS", "MODEL", "FORGET", "DUE", "VERSION"]
    assert [line.split()[0] for line in lines[1:3]] == ids[:0:-1]
    assert lines[3].startswith("more: --cursor ")
    page = json.loads(cli("--json", "list", "--limit", "2", "--cursor", lines[3].split()[-1])[1])
    assert [r["id"] for r in page["items"]] == [ids[0]] and page["next_cursor"] is None
    everything = json.loads(cli("list", "--limit", "1", "--all", "--json")[1])
    assert [r["id"] for r in everything["items"]] == ids[::-1]
    assert json.loads(cli("list", "--status", "completed", "--json")[1])["items"] == []
    assert cli("list", "--model", "ghost")[1].strip() == "no requests"


def test_errors_are_one_line_without_traceback_and_exit_codes_say_why(cli, api):
    code, _, err = cli("status", str(uuid.uuid4()))
    assert code == Exit.NOT_FOUND == 3
    assert err.startswith("error: NotFound: unlearn request") and "Traceback" not in err

    code, _, err = cli("status", str(uuid.uuid4()), key="obl_wrong_key")
    assert code == Exit.AUTH == 4 and err.startswith("error: Unauthenticated: invalid or revoked API key")
    code, _, err = cli("models", "list", role=None)
    assert code == Exit.AUTH and "set OBLIVIO_API_KEY" in err
    assert cli("keys", "list", role=Role.officer)[0] == Exit.AUTH  # 403: officers do not manage keys

    code, _, err = cli("submit", "tr-cat-000", "nope-1", "--class", "unicorn", "--model", "m")
    assert code == Exit.FAILED == 1
    assert err.splitlines() == [
        "error: Unprocessable: request refused; nothing was recorded",
        "  - samples 'nope-1': unknown sample in the model's training dataset",
        "  - classes 'unicorn': unknown class in the model's training dataset",
    ]

    request = json.loads(cli("submit", "tr-cat-001", "--model", "m", "--idempotency-key", "k", "--json")[1])
    code, _, err = cli("submit", "tr-cat-002", "--model", "m", "--idempotency-key", "k")
    assert code == Exit.CONFLICT == 5 and err.startswith("error: Conflict: ")
    assert cli("cancel", request["id"])[0] == Exit.OK
    code, _, err = cli("cancel", request["id"])
    assert code == Exit.CONFLICT and "can no longer be cancelled" in err


def test_server_unreachable_is_its_own_exit_code(capsys):
    code = main(["--url", f"http://127.0.0.1:{free_port()}", "status", str(uuid.uuid4())])
    assert code == Exit.UNREACHABLE == 6
    assert capsys.readouterr().err.startswith("error: cannot reach the Oblivio API at http://127.0.0.1:")


def test_usage_errors_exit_2(cli, tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        cli("status", "not-a-uuid")
    assert exc.value.code == Exit.USAGE
    assert "'not-a-uuid' is not a request id" in capsys.readouterr().err
    code, _, err = cli("submit", "--samples-file", str(tmp_path / "missing.txt"), "--model", "m")
    assert code == Exit.USAGE and err.startswith("error: cannot read sample keys")


def test_watch_exits_by_outcome_and_gives_up_after_its_timeout(cli):
    request = json.loads(cli("submit", "tr-cat-000", "--model", "m", "--json")[1])
    code, _, err = cli("watch", request["id"], "--interval", "0.05", "--timeout-after", "0.2")
    assert code == Exit.WATCH_TIMEOUT == 13 and "still queued" in err  # no worker in these tests
    cli("cancel", request["id"])
    code, out, _ = cli("watch", request["id"], "--json")
    assert code == Exit.REQUEST_CANCELLED == 11
    assert json.loads(out)["status"] == "cancelled"


def test_keys_over_http(cli):
    code, out, err = cli("keys", "create", "--name", "alice", "--role", "officer", role=Role.admin)
    assert code == Exit.OK and out.strip().startswith("obl_") and "shown only this once" in err
    alice = out.strip()
    assert cli("models", "list", key=alice)[0] == Exit.OK
    keys = json.loads(cli("keys", "list", "--json", role=Role.admin)[1])
    (listed,) = [k for k in keys if k["name"] == "alice"]
    assert listed["role"] == "officer" and listed["revoked_at"] is None
    table = cli("keys", "list", role=Role.admin)[1]
    assert table.splitlines()[0].split() == ["ID", "NAME", "ROLE", "PREFIX", "CREATED", "REVOKED"] and "alice" in table
    code, out, _ = cli("keys", "revoke", str(listed["id"]), role=Role.admin)
    assert code == Exit.OK and out.strip() == f"revoked key {listed['id']} (alice, officer)"
    assert cli("models", "list", key=alice)[0] == Exit.AUTH


def test_models_list_versions_and_promote(cli):
    code, out, _ = cli("models", "list", role=Role.auditor)
    assert code == Exit.OK
    assert out.splitlines()[1].split() == ["m", "mae", "v1", "train", "proxy"]
    versions = json.loads(cli("models", "versions", "m", "--json")[1])
    assert [(v["version"], v["is_current"]) for v in versions] == [(1, True)]
    assert cli("models", "versions", "m")[1].splitlines()[1].split()[:4] == ["v1", "-", "published", "yes"]
    code, out, _ = cli("models", "promote", "m", "1", role=Role.admin)
    assert code == Exit.OK and out.strip() == "m: current is now v1"
    assert cli("models", "promote", "m", "7", role=Role.admin)[0] == Exit.NOT_FOUND
    assert cli("models", "versions", "ghost")[0] == Exit.NOT_FOUND


def test_signing_key_over_http_matches_the_server(cli, api):
    code, out, _ = cli("signing-key", role=Role.auditor)
    assert code == Exit.OK and out == api.client.app.state.signer.public_pem()


def test_review_approve_and_reject_and_watch_a_rejected_request(cli, api):
    api.client.app.state.settings.require_approval = True
    first = json.loads(cli("submit", "tr-cat-000", "--model", "m", "--json")[1])
    second = json.loads(cli("submit", "tr-cat-001", "--model", "m", "--json")[1])
    assert first["status"] == second["status"] == "pending_approval"
    assert cli("approve", first["id"])[0] == Exit.AUTH  # officers do not review
    code, out, _ = cli("approve", first["id"], role=Role.reviewer)
    assert code == Exit.OK and out.startswith(f"request {first['id']} queued")
    code, out, _ = cli("reject", second["id"], "--reason", "not our data", "--json", role=Role.reviewer)
    assert code == Exit.OK and json.loads(out)["status"] == "rejected"
    code, out, _ = cli("watch", second["id"])
    assert code == Exit.REQUEST_REJECTED == 12 and "status    rejected" in out


def test_the_readmes_due_dates_work_as_written(cli):
    # The default is one month after receipt (GDPR Art. 12(3)); a caller may state an earlier date.
    soon = (datetime.now(UTC) + timedelta(days=3)).strftime("%Y-%m-%dT%H:%M:%SZ")
    near = json.loads(cli("submit", "tr-cat-000", "--model", "m", "--due-at", soon, "--json")[1])
    json.loads(cli("submit", "tr-cat-001", "--model", "m", "--json")[1])
    code, out, _ = cli("list", "--due-before", (datetime.now(UTC) + timedelta(days=10)).date().isoformat(), "--all", "--json")
    assert code == Exit.OK and [r["id"] for r in json.loads(out)["items"]] == [near["id"]]
    code, _, err = cli("submit", "tr-cat-002", "--model", "m", "--due-at", "2030-01-01T00:00:00")
    assert code == Exit.FAILED and "must include a timezone" in err
    code, _, err = cli("submit", "tr-cat-002", "--model", "m", "--due-at", "2020-01-01T00:00:00+00:00")
    assert code == Exit.FAILED and "due_at" in err and "after receipt" in err


def test_status_of_a_gate_failure_says_what_to_do_next(cli, api):
    from service.db.enums import RequestStatus
    from service.db.models import UnlearnRequest

    request_id = json.loads(cli("submit", "tr-cat-000", "--model", "m", "--steps", "50", "--json")[1])["id"]
    row = api.session.get(UnlearnRequest, uuid.UUID(request_id))
    assert row.config == {"steps": 50}
    row.status, row.reason = RequestStatus.failed, "gate_failed"
    row.reason_detail = "gate failed: forget_min_psnr_drop (value 0.5, threshold 2.0)"
    api.session.commit()
    code, out, _ = cli("status", request_id)
    assert code == Exit.OK
    assert "next      the publish gate refused the result: forget_min_psnr_drop was 0.5, at least 2.0 is required" in out
    assert "next      forget harder with a larger budget: oblivio submit tr-cat-000 --model m --steps N" in out
    assert f"oblivio report {request_id} -o report.json" in out
