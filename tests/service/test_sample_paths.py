"""The one sample-path rule (service/storage/paths.py): what registration accepts and what reading opens."""

import os
from pathlib import Path

import pytest
from sqlalchemy import select

from service.db.enums import DatasetKind
from service.db.models import Sample
from service.domain.hygiene import delete_forget_files
from service.storage import paths
from service.storage.paths import MISSING, NOT_A_FILE, NOT_CANONICAL, OUTSIDE, UNSUPPORTED, SampleFiles, SamplePathError
from tests.builders import make_dataset, write_samples


@pytest.fixture
def tree(tmp_path):
    """root/ holding x/a.png; a secret file next to the root, outside it."""
    root = tmp_path / "root"
    (root / "x").mkdir(parents=True)
    (root / "x" / "a.png").write_bytes(b"inside")
    (tmp_path / "secret").write_bytes(b"outside")
    return root


def locate(uri: str, roots: list[Path]) -> Path:
    with SampleFiles(roots) as files:
        folder, name = files.locate(uri)
    return Path(folder, name)


def check(uri: str, roots: list[Path]) -> None:
    with SampleFiles(roots) as files:
        files.check(uri)


def read(uri: str, roots: list[Path]) -> bytes:
    with SampleFiles(roots) as files:
        return files.read(uri)


def remove(uri: str, roots: list[Path]) -> bool:
    with SampleFiles(roots) as files:
        return files.remove(uri)


def refusal(uri: str, roots: list[Path]) -> str:
    with pytest.raises(SamplePathError) as err:
        check(uri, roots)
    return str(err.value)


def test_plain_paths_and_local_file_uris_are_accepted(tree):
    target = tree / "x" / "a.png"
    (tree / "x" / "with space.png").write_bytes(b"s")
    for uri in (str(target), f"file://{target}", f"file:{target}", f"file://localhost{target}", f"FILE://LOCALHOST{target}"):
        assert locate(uri, [tree]) == target
        check(uri, [tree])
        assert read(uri, [tree]) == b"inside"
    assert read((tree / "x" / "with space.png").as_uri(), [tree]) == b"s"  # %20 decoded once


@pytest.mark.parametrize("tail", [
    "x/%2e%2e/%2e%2e/secret",  # encoded dot segments
    "x/%2E%2E/%2e%2E/secret",
    "x/..%2f..%2fsecret",  # encoded separators
    "x/..%2F..%2Fsecret",
    "x/../../secret",
    "x/./a.png",
    "x/a.png%00.txt",  # encoded NUL
    "x/%ff.png",  # not UTF-8 once decoded
])
def test_dot_segments_and_encoded_separators_are_refused_after_one_decoding(tree, tail):
    assert refusal(f"file://{tree}/{tail}", [tree]) == NOT_CANONICAL
    with pytest.raises(SamplePathError, match=NOT_CANONICAL):
        read(f"file://{tree}/{tail}", [tree])


def test_plain_paths_are_literal_and_refuse_dot_segments_and_control_characters(tree):
    assert refusal(f"{tree}/x/../../secret", [tree]) == NOT_CANONICAL
    assert refusal(f"{tree}/x/a.png\x00", [tree]) == NOT_CANONICAL
    assert refusal(f"{tree}/x/a\n.png", [tree]) == NOT_CANONICAL
    assert refusal(f"{tree}/x/%2e%2e/%2e%2e/secret", [tree]) == MISSING  # a plain path is not decoded at all


def test_double_encoding_is_decoded_once_only(tree):
    uri = f"file://{tree}/x/%252e%252e/%252e%252e/secret"
    assert locate(uri, [tree]) == tree / "x" / "%2e%2e" / "%2e%2e" / "secret"
    assert refusal(uri, [tree]) == MISSING
    with pytest.raises(SamplePathError, match=MISSING):
        read(uri, [tree])


@pytest.mark.parametrize("uri", [
    "file://somehost{p}", "file://localhost:8080{p}", "file://user@localhost{p}", "file://127.0.0.1{p}",
    "http://localhost{p}", "s3://bucket{p}", "file:x/a.png", "x/a.png", "file://{p}?q=1", "file://{p}#f", "",
])
def test_hosts_other_schemes_and_relative_paths_are_refused(tree, uri):
    assert refusal(uri.format(p=tree / "x" / "a.png"), [tree]) == UNSUPPORTED


def test_missing_files_directories_and_fifos_are_refused(tree):
    assert refusal(str(tree / "x" / "nope.png"), [tree]) == MISSING
    assert refusal(str(tree / "x" / "a.png" / "below"), [tree]) == MISSING
    assert refusal(str(tree / "x"), [tree]) == NOT_A_FILE
    assert refusal(str(tree), [tree]) == OUTSIDE  # the root is no file below the root
    os.mkfifo(tree / "x" / "pipe")
    assert refusal(str(tree / "x" / "pipe"), [tree]) == NOT_A_FILE
    with pytest.raises(SamplePathError, match=NOT_A_FILE):
        read(str(tree / "x" / "pipe"), [tree])  # and the read does not block on the FIFO


def test_outside_the_roots_and_links_leading_out_are_refused(tree, tmp_path):
    secret = tmp_path / "secret"
    assert refusal(str(secret), [tree]) == OUTSIDE
    assert refusal(str(tmp_path / "rootless" / "a.png"), [tree]) == OUTSIDE  # a sibling sharing the prefix
    (tree / "x" / "out.png").symlink_to(secret)
    (tree / "x" / "outdir").symlink_to(tmp_path, target_is_directory=True)
    (tree / "x" / "loop").symlink_to(tree / "x" / "loop")
    assert refusal(str(tree / "x" / "out.png"), [tree]) == OUTSIDE
    assert refusal(str(tree / "x" / "outdir" / "secret"), [tree]) == OUTSIDE
    assert refusal(str(tree / "x" / "loop"), [tree]) == OUTSIDE
    (tree / "x" / "alias.png").symlink_to(tree / "x" / "a.png")  # the file itself is never a link
    assert refusal(str(tree / "x" / "alias.png"), [tree]) == OUTSIDE
    (tree / "y").symlink_to(tree / "x", target_is_directory=True)  # a folder link that stays inside is resolved
    assert locate(str(tree / "y" / "a.png"), [tree]) == tree / "x" / "a.png"
    assert read(str(tree / "y" / "a.png"), [tree]) == b"inside"


def test_a_root_that_is_itself_a_link_is_resolved(tree, tmp_path):
    linked = tmp_path / "linked-root"
    linked.symlink_to(tree, target_is_directory=True)
    check(str(linked / "x" / "a.png"), [linked])
    check(str(tree / "x" / "a.png"), [linked])
    assert read(f"file://{linked}/x/a.png", [linked]) == b"inside"
    assert refusal(str(tmp_path / "secret"), [linked]) == OUTSIDE


def test_a_link_planted_after_registration_is_not_followed(tree, tmp_path):
    uri = str(tree / "x" / "a.png")
    check(uri, [tree])
    (tree / "x" / "a.png").unlink()
    (tree / "x" / "a.png").symlink_to(tmp_path / "secret")
    with pytest.raises(SamplePathError, match=OUTSIDE):
        read(uri, [tree])


@pytest.mark.parametrize("swap", ["file", "parent"])
def test_a_link_swapped_in_between_the_check_and_the_open_is_not_followed(tree, tmp_path, monkeypatch, swap):
    """The race the resolved-path check cannot see: the open itself refuses every link below the root."""
    uri = str(tree / "x" / "a.png")
    if swap == "file":
        (tree / "x" / "a.png").unlink()
        (tree / "x" / "a.png").symlink_to(tmp_path / "secret")
    else:
        (tmp_path / "elsewhere").mkdir()
        (tmp_path / "elsewhere" / "a.png").write_bytes(b"outside")
        (tree / "x" / "a.png").unlink()
        (tree / "x").rmdir()
        (tree / "x").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    monkeypatch.setattr(paths.os.path, "realpath", lambda p: str(p))  # as if resolved before the swap
    with pytest.raises(SamplePathError, match=OUTSIDE):
        read(uri, [tree])
    if swap == "file":
        assert not remove(uri, [tree])  # the link is no regular file: nothing is deleted
        assert (tmp_path / "secret").read_bytes() == b"outside"
    else:
        with pytest.raises(SamplePathError, match=OUTSIDE):
            remove(uri, [tree])
        assert (tmp_path / "elsewhere" / "a.png").read_bytes() == b"outside"


def test_remove_deletes_the_file_only(tree, tmp_path):
    assert remove(str(tree / "x" / "a.png"), [tree])
    assert not (tree / "x" / "a.png").exists()
    assert not remove(str(tree / "x" / "a.png"), [tree])
    (tree / "x" / "out.png").symlink_to(tmp_path / "secret")
    assert not remove(str(tree / "x" / "out.png"), [tree])
    assert (tmp_path / "secret").exists() and (tree / "x" / "out.png").is_symlink()


def test_refusals_never_name_a_path(tree, tmp_path):
    (tree / "x" / "out.png").symlink_to(tmp_path / "secret")
    for uri in (str(tree / "x" / "out.png"), f"file://{tree}/x/%2e%2e/%2e%2e/secret", str(tree / "nope")):
        with pytest.raises(SamplePathError) as err:
            read(uri, [tree])
        assert str(tmp_path) not in str(err.value)


def test_deleting_forget_files_never_follows_a_link(db_session, tmp_path):
    session, _ = db_session
    root = tmp_path / "data"
    samples = write_samples(root, "tr", ["cat"], 3)
    dataset = make_dataset(session, "train", DatasetKind.training, samples, [root])
    (tmp_path / "secret").write_bytes(b"outside")
    (root / "tr-cat-001.bin").unlink()
    (root / "tr-cat-001.bin").symlink_to(tmp_path / "secret")
    ids = list(session.scalars(select(Sample.id).where(Sample.dataset_id == dataset.id)))
    assert delete_forget_files(session, sample_ids=ids, roots=[root], actor="test", job_id="j") == 2
    assert sorted(p.name for p in root.iterdir()) == ["tr-cat-001.bin"]
    assert (tmp_path / "secret").read_bytes() == b"outside"


def test_a_batch_closes_every_folder_it_opened(tree):
    for i in range(paths._MAX_OPEN_FOLDERS + 6):  # more folders than a batch keeps open at once
        (tree / f"d{i}").mkdir()
        (tree / f"d{i}" / "s.png").write_bytes(b"%d" % i)
    before = len(os.listdir("/proc/self/fd"))
    with SampleFiles([tree]) as files:
        assert [files.read(str(tree / f"d{i}" / "s.png")) for i in range(70)] == [b"%d" % i for i in range(70)]
    assert len(os.listdir("/proc/self/fd")) == before
