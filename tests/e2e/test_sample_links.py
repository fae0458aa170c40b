"""Sample files swapped for symbolic links after registration: the real worker refuses to follow them."""

import hashlib
import shutil

import pytest

from service.db.enums import Role
from tests.e2e.stack import launch
from tests.e2e.test_end_to_end import TINY_GATE, follow, register_demo_data

pytestmark = pytest.mark.integration


def test_links_planted_after_registration_fail_the_request_without_leaking(tmp_path):
    stack = launch("postgres", tmp_path)
    try:
        register_demo_data(stack, gate=dict.fromkeys(TINY_GATE))
        officer, auditor = stack.client(Role.officer), stack.client(Role.auditor)
        outside = tmp_path / "outside"
        outside.mkdir()
        secret = outside / "passwd"
        secret.write_bytes(b"root:x:0:0:root:/root:/bin/bash\n")
        train = stack.data_root / "train"

        (train / "tr-square-000.png").unlink()  # the file itself becomes a link out of the roots
        (train / "tr-square-000.png").symlink_to(secret)
        first = check_refused(officer, auditor, "tr-square-000", outside)

        shutil.copytree(train, outside / "train")  # a folder above the file becomes a link, to identical bytes
        shutil.rmtree(train)
        train.symlink_to(outside / "train", target_is_directory=True)
        second = check_refused(officer, auditor, "tr-circle-001", outside)

        leaked = (str(outside), hashlib.sha256(secret.read_bytes()).hexdigest())
        for request_id in (first, second):
            report = auditor.get(f"/unlearn-requests/{request_id}/report")
            assert report.status_code == 200 and report.json()["body"]["outcome"] == "invalid_samples"
            assert not [s for s in leaked if s in report.text]
        versions = auditor.get("/models/tiny/versions").json()
        assert [(v["version"], v["status"]) for v in versions] == [(1, "published")]
    finally:
        stack.stop()


def check_refused(officer, auditor, sample_key: str, outside) -> str:
    created = officer.post("/unlearn-requests", json={"model": "tiny", "samples": [sample_key]})
    assert created.status_code == 201, created.text
    final, _ = follow(auditor, created.json()["id"])
    assert (final["status"], final["reason"]) == ("failed", "invalid_samples"), final
    assert final["reason_detail"] == f"sample '{sample_key}' of dataset 'train': outside the data roots or a symbolic link"
    assert str(outside) not in final["reason_detail"]
    return final["id"]
