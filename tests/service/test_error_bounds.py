"""A 422 never echoes huge input: problem lists show their first 100 items and a count, long strings are cut."""

import json

from service.db.enums import Role
from tests.builders import tiny_checkpoint


def submit(api, body: dict):
    return api.client.post("/unlearn-requests", json=body, headers=api.as_(Role.officer))


def assert_capped(response, count: int, max_bytes: int) -> dict:
    assert response.status_code == 422, response.text
    assert len(response.content) < max_bytes, len(response.content)
    detail = response.json()["detail"]
    assert (detail["count"], len(detail["items"]), detail["truncated"]) == (count, 100, True)
    return detail


def test_ten_thousand_unknown_fields_list_the_first_hundred_and_the_count(api):
    body = {"model": "m", "samples": ["tr-cat-000"], **{f"colour{i}": i for i in range(10_000)}}
    detail = assert_capped(submit(api, body), 10_000, 30_000)
    assert {tuple(i["loc"]) for i in detail["items"]} == {("body", f"colour{i}") for i in range(100)}


def test_ten_thousand_unknown_samples_list_the_first_hundred_and_the_count(api):
    detail = assert_capped(submit(api, {"model": "m", "samples": [f"nope-{i}" for i in range(10_000)]}), 10_000, 30_000)
    assert detail["items"][0] == {"field": "samples", "value": "nope-0", "problem": "unknown sample in the model's training dataset"}
    assert "nothing was recorded" in detail["message"]


def test_a_short_list_is_not_truncated(api):
    detail = submit(api, {"model": "m", "samples": ["nope-1", "nope-2"]}).json()["detail"]
    assert (detail["count"], len(detail["items"]), detail["truncated"]) == (2, 2, False)


def test_a_huge_model_spec_is_not_echoed(api):
    huge = "x" * 100_000
    spec = json.dumps({"name": "big", "training_dataset": "train", "proxy_dataset": "proxy", "unlearn_defaults": huge})
    response = api.client.post(
        "/models", headers=api.as_(Role.admin), data={"spec": spec},
        files={"checkpoint": ("m.safetensors", tiny_checkpoint())},
    )  # fmt: skip
    assert response.status_code == 422, response.text
    assert len(response.content) < 2_000 and "x" * 400 not in response.text


def test_huge_keys_and_values_are_cut_in_every_error(api):
    long_key = "k" * 100_000
    response = submit(api, {"model": "m", "samples": ["tr-cat-000"], long_key: 1})
    assert response.status_code == 422 and len(response.content) < 2_000
    mistyped = submit(api, {"model": "m" * 100_000, "samples": ["tr-cat-000"]})
    assert mistyped.status_code == 422 and len(mistyped.content) < 2_000


def test_repeated_keys_among_thousands_are_named_once_each(api):
    keys = [f"nope-{i}" for i in range(9_000)]
    detail = assert_capped(submit(api, {"model": "m", "samples": [*keys, "nope-5", "nope-8999", "nope-5"]}), 9_002, 30_000)
    repeated = [{"field": "samples", "value": k, "problem": "listed more than once"} for k in ("nope-5", "nope-8999")]
    assert detail["items"][:2] == repeated
    samples = [f"tr-{c}-{i:03d}" for c in ("cat", "dog", "fox") for i in range(4)]
    response = submit(api, {"model": "m", "samples": [*samples, samples[3]]})
    assert response.json()["detail"]["items"] == [{"field": "samples", "value": samples[3], "problem": "listed more than once"}]
