"""The S3 artifact store against a real S3 endpoint (moto's server mode): round trip, digest checks on
read, and purges that leave nothing readable, on plain and versioned buckets."""

import hashlib
import io
import json
from pathlib import Path

import pytest

from service.config import Settings
from service.db.enums import Role
from service.storage import ArtifactDamaged, LocalArtifactStore, StoreRefused, StoreUnavailable, make_store
from service.storage.s3 import S3ArtifactStore
from tests.s3 import CREDENTIALS, Requests, all_versions, client, new_bucket, server_process
from tests.service.test_purge import BASE, download, erase_once, purge, register


@pytest.fixture
def s3_store(s3_endpoint, tmp_path, monkeypatch):
    """make_store(settings) on a fresh bucket; ``s3_store(versioned=True)`` for a versioned one."""
    for name, value in CREDENTIALS.items():
        monkeypatch.setenv(name, value)

    def make(versioned: bool = False) -> S3ArtifactStore:
        bucket = new_bucket(s3_endpoint, versioned=versioned)
        settings = Settings(home=tmp_path / "home", artifact_url=f"s3://{bucket}/oblivio/", s3_endpoint_url=s3_endpoint,
                            s3_addressing_style="path")
        store = make_store(settings)
        assert isinstance(store, S3ArtifactStore) and store.versioned is versioned
        return store

    return make


def test_round_trip_keeps_content_addressing_and_leaves_no_local_copy(s3_store, s3_endpoint, tmp_path):
    store = s3_store()
    digest = store.put(b"a checkpoint")
    assert digest == hashlib.sha256(b"a checkpoint").hexdigest() and store.put(b"a checkpoint") == digest
    assert store.get(digest) == b"a checkpoint" and store.exists(digest)
    assert store.location(digest) == f"s3://{store.bucket}/oblivio/sha256/{digest[:2]}/{digest}"
    big = bytes(range(256)) * (9 * 4096 + 7)  # past boto3's 8 MiB multipart threshold
    assert store.put_stream(io.BytesIO(big)) == (hashlib.sha256(big).hexdigest(), len(big))
    with store.open_verified(hashlib.sha256(big).hexdigest()) as fh:
        assert fh.read() == big
    store.put_derived(digest, "teacher-abc", b"targets")
    assert store.get_derived(digest, "teacher-abc") == b"targets" and store.get_derived(digest, "other") is None
    missing = hashlib.sha256(b"never stored").hexdigest()
    assert not store.exists(missing) and store.get_derived(missing, "teacher-abc") is None
    with pytest.raises(FileNotFoundError):
        store.get(missing)
    with pytest.raises(FileNotFoundError):
        store.open_verified(missing)
    with pytest.raises(ValueError, match="not a sha256"):
        store.get("../../etc/passwd")
    assert [p for p in (tmp_path / "home").rglob("*") if p.is_file()] == []  # scratch files are anonymous and gone
    keys = sorted(e["Key"] for e in client(s3_endpoint).list_objects_v2(Bucket=store.bucket)["Contents"])
    assert keys == sorted([f"oblivio/sha256/{digest[:2]}/{digest}", f"oblivio/sha256/{digest[:2]}/{digest}.derived/teacher-abc",
                           f"oblivio/sha256/{hashlib.sha256(big).hexdigest()[:2]}/{hashlib.sha256(big).hexdigest()}"])


def test_a_tampered_object_is_refused_on_read(s3_store, s3_endpoint, tmp_path):
    store = s3_store()
    digest = store.put(b"the real bytes")
    client(s3_endpoint).put_object(Bucket=store.bucket, Key=store.key(digest), Body=b"the fake bytes")
    with pytest.raises(ArtifactDamaged, match="tampered"):
        store.get(digest)
    with pytest.raises(ArtifactDamaged):
        store.open_verified(digest)
    local = LocalArtifactStore(tmp_path / "local")  # the local store checks the same way
    digest = local.put(b"the real bytes")
    local.local_path(digest).write_bytes(b"the fake bytes")
    with pytest.raises(ArtifactDamaged):
        local.get(digest)
    with pytest.raises(ArtifactDamaged):
        local.open_verified(digest)


@pytest.mark.parametrize("versioned", [False, True], ids=["plain", "versioned"])
def test_purge_through_the_api_leaves_nothing_readable(api, s3_store, s3_endpoint, versioned):
    store = s3_store(versioned=versioned)
    store.put(BASE)  # model m's base, registered by the fixture
    api.client.app.state.store = store
    shared = register(api, "twin")["checkpoint_digest"]  # uploaded through the API into the bucket
    assert shared == hashlib.sha256(BASE).hexdigest() and store.exists(shared)
    store.put_derived(shared, "teacher-cache", b"targets v1")
    store.put_derived(shared, "teacher-cache", b"targets v1 rebuilt")  # a second version on a versioned bucket
    erase_once(api, "m")
    erase_once(api, "twin")
    v2 = download(api, "m", 2, Role.officer)
    assert v2.status_code == 200 and v2.content == b"m v2"
    assert v2.headers["x-checkpoint-sha256"] == hashlib.sha256(b"m v2").hexdigest()
    blob = store.key(shared)
    before = all_versions(s3_endpoint, store.bucket, blob)
    assert len(before) == (3 if versioned else 2), before  # blob, cache (x2 when versioned)
    old = client(s3_endpoint).list_object_versions(Bucket=store.bucket, Prefix=blob)["Versions"]

    assert sorted(v for _, v in purge(api)) == [1, 1]  # both v1s, which share the blob
    assert all_versions(s3_endpoint, store.bucket, blob) == []  # no object, no old version, no delete marker
    assert not store.exists(shared) and store.get_derived(shared, "teacher-cache") is None
    for entry in old:  # not even by version id
        with pytest.raises(Exception, match="NoSuchKey|NoSuchVersion|404|400"):
            client(s3_endpoint).get_object(Bucket=store.bucket, Key=entry["Key"], VersionId=entry["VersionId"])
    assert download(api, "twin", 1, Role.admin).status_code == 410
    assert download(api, "m", 2, Role.officer).content == b"m v2"  # the live versions stay

    client(s3_endpoint).put_object(Bucket=store.bucket, Key=store.key(hashlib.sha256(b"m v2").hexdigest()), Body=b"evil")
    refused = download(api, "m", 2, Role.officer)
    assert refused.status_code == 500 and refused.json()["error"] == "ArtifactDamaged", refused.text


def test_an_unreachable_store_is_unavailable_not_missing(api):
    """No answer is StoreUnavailable (the worker's task retries it; the API answers 503), never 'not stored'."""
    import boto3
    from botocore.config import Config

    from tests.s3 import free_port

    dead = boto3.client("s3", endpoint_url=f"http://127.0.0.1:{free_port()}", region_name="us-east-1",  # nothing listens
                        aws_access_key_id="a", aws_secret_access_key="b",
                        config=Config(retries={"max_attempts": 1}, connect_timeout=1, s3={"addressing_style": "path"}))
    store = S3ArtifactStore(dead, "bucket", "p/", check=False)
    digest = hashlib.sha256(BASE).hexdigest()
    for call in (lambda: store.get(digest), lambda: store.exists(digest), lambda: store.put(b"x"),
                 lambda: store.get_derived(digest, "teacher-x"), lambda: store.delete(digest)):
        with pytest.raises(StoreUnavailable, match="unreachable"):
            call()
    with pytest.raises(StoreRefused, match="not reachable"):
        S3ArtifactStore(dead, "bucket", "p/")
    api.client.app.state.store = store
    down = download(api, "m", 1, Role.officer)
    assert down.status_code == 503 and down.json()["error"] == "Unavailable", down.text


def compose_policy(bucket: str) -> dict:
    """The application user's policy that docker-compose.yml's minio-init gives MinIO (README: permissions)."""
    text = (Path(__file__).resolve().parents[2] / "docker-compose.yml").read_text()
    body = text.split("cat > /tmp/oblivio-app.json <<EOF", 1)[1].split("EOF", 1)[0]
    return json.loads(body.replace("$$BUCKET", bucket))


def test_a_versioned_bucket_without_permission_to_delete_versions_is_refused(tmp_path):
    """moto enforcing IAM: the documented policy is enough to use and purge a versioned bucket; without
    s3:DeleteObjectVersion a purge could not delete old versions, so the store refuses to start."""
    with server_process() as endpoint:
        bucket = new_bucket(endpoint, versioned=True)
        iam = client(endpoint, "iam")
        keys = {}
        documented = compose_policy(bucket)
        for user, statements in (
            ("documented", documented["Statement"]),
            ("no-version-delete", [*documented["Statement"],
                                   {"Effect": "Deny", "Action": "s3:DeleteObjectVersion", "Resource": "*"}]),
        ):
            iam.create_user(UserName=user)
            iam.put_user_policy(UserName=user, PolicyName="s3", PolicyDocument=json.dumps(
                {"Version": "2012-10-17", "Statement": statements}))
            key = iam.create_access_key(UserName=user)["AccessKey"]
            keys[user] = {"aws_access_key_id": key["AccessKeyId"], "aws_secret_access_key": key["SecretAccessKey"]}
        import httpx

        httpx.post(f"{endpoint}/moto-api/reset-auth", content=b"0").raise_for_status()  # IAM enforced from now on

        store = S3ArtifactStore(client(endpoint, **keys["documented"]), bucket, "p/")
        assert store.versioned  # allowed: starts, and every operation works
        digest = store.put(b"v1")
        store.put_derived(digest, "teacher-x", b"cache")
        store.put_derived(digest, "teacher-x", b"cache again")
        assert store.get(digest) == b"v1" and store.exists(digest)
        store.delete(digest)
        store.delete_derived(digest)
        assert not store.exists(digest) and store.get_derived(digest, "teacher-x") is None
        listing = store.client.list_object_versions(Bucket=bucket)
        assert listing.get("Versions", []) + listing.get("DeleteMarkers", []) == []  # the probe's too
        with pytest.raises(StoreRefused, match=r"versioned.*s3:DeleteObjectVersion") as refused:
            S3ArtifactStore(client(endpoint, **keys["no-version-delete"]), bucket, "p/")
        assert "AccessDenied" in str(refused.value)


def test_an_api_process_started_by_serve_reads_the_versioning_but_does_not_probe_again(s3_endpoint, tmp_path, monkeypatch,
                                                                                        caplog):
    """`oblivio serve` probes the bucket once before starting its API processes (artifact_probed_url): each then reads
    the bucket's versioning (a purge needs it) without writing and deleting a probe object of its own."""
    from service.main import create_app

    for name, value in CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    bucket = new_bucket(s3_endpoint, versioned=True)
    url = f"s3://{bucket}/oblivio"
    settings = Settings(home=tmp_path / "home", artifact_url=url, s3_endpoint_url=s3_endpoint, s3_addressing_style="path")
    seen = Requests(caplog, bucket)
    alone = create_app(settings)
    assert [r.split()[0] for r in seen.probes()] == ["PUT", "GET", "DELETE"] and alone.state.store.versioned
    caplog.clear()
    started = create_app(settings.model_copy(update={"artifact_probed_url": url}))
    assert seen.probes() == [] and started.state.store.versioned
    assert [r for r in seen() if "versioning" in r] == [f"GET /{bucket}?versioning"]
    stale = create_app(settings.model_copy(update={"artifact_probed_url": f"s3://{bucket}/elsewhere"}))
    assert len(seen.probes()) == 3 and stale.state.store.versioned  # passed for another URL: probes again
