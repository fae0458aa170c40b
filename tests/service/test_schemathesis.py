"""Property-based API fuzzing from the app's own OpenAPI: no server errors, no response that breaks the schema.

Every operation is driven with generated path parameters and with real ids (a queued request, a
request waiting for approval, its job, model `m` version 1, dataset `train`, a spare API key),
with valid and with deliberately invalid query parameters and bodies, under every role.
"""

import hypothesis.strategies as st
import schemathesis
from hypothesis import HealthCheck, given, settings
from sqlalchemy import select
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from service.audit.sealer import seal_pending
from service.db.enums import Role
from service.db.models import ApiKey

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
EXAMPLES_PER_OPERATION = 50
MIN_CASES = 1_000
SAMPLE_KEYS = st.sampled_from([f"tr-cat-{i:03d}" for i in range(4)])
SUBMISSIONS = st.fixed_dictionaries(
    {"model": st.just("m"), "samples": st.lists(SAMPLE_KEYS, min_size=1, max_size=3, unique=True)},
    optional={
        "classes": st.lists(st.sampled_from(["dog", "fox"]), max_size=2, unique=True),
        "method": st.sampled_from(["encoder_l2", "max_loss", "noisy_label"]),
        "external_id": st.text(min_size=1, max_size=8),
    },
)


def real_ids(api) -> dict[str, list[str]]:
    officer = api.as_(Role.officer)
    webhook = api.client.post("/webhooks", json={"url": "https://8.8.8.8/hook", "events": ["request.queued"]},
                              headers=officer).json()
    queued = api.client.post("/unlearn-requests", json={"model": "m", "samples": ["tr-cat-000"]}, headers=officer).json()
    api.client.app.state.settings.require_approval = True
    pending = api.client.post("/unlearn-requests", json={"model": "m", "classes": ["dog"]}, headers=officer).json()
    api.client.app.state.settings.require_approval = False
    spare = api.client.post("/api-keys", json={"name": "spare", "role": "auditor"}, headers=api.as_(Role.admin)).json()
    size = seal_pending(api.session, api.client.app.state.signer).size  # a signed checkpoint to ask proofs of
    api.session.commit()
    return {
        "size": [str(size)],
        "request_id": [queued["id"], pending["id"]],
        "job_id": [queued["job"]["id"]],
        "ref": ["1", "current"],
        "key_id": [str(spare["id"])],
        "webhook_id": [webhook["id"]],
        "delivery_id": [d["id"] for d in
                        api.client.get(f"/webhooks/{webhook['id']}/deliveries", headers=officer).json()["items"]],
    }


def strategy(operation, ids: dict[str, list[str]], fixture_key_ids: set[str]):
    """Generated cases, cases on real ids (valid and invalid query and body), and real submissions."""
    names = [p.name for p in operation.path_parameters]
    dataset = operation.path.startswith("/datasets")
    choices = {n: ["train" if dataset else "m"] if n == "name" else ids[n] for n in names}
    real = st.fixed_dictionaries({n: st.sampled_from(v) for n, v in choices.items()})
    variants = [
        operation.as_strategy().filter(lambda case: str(case.path_parameters.get("key_id")) not in fixture_key_ids),
        real.flatmap(lambda path: operation.as_strategy(path_parameters=path)),
        real.flatmap(lambda path: operation.as_strategy(GenerationMode.NEGATIVE, path_parameters=path)),
    ]
    if operation.label == "POST /unlearn-requests":
        variants.append(SUBMISSIONS.flatmap(lambda body: operation.as_strategy(body=body)))
    return st.one_of(variants)


def test_every_operation_with_real_ids_never_errors_and_keeps_its_schema(api):
    ids = real_ids(api)
    fixture_key_ids = {str(k.id) for k in api.session.scalars(select(ApiKey))}  # never revoked by the fuzzer
    schema = schemathesis.openapi.from_asgi("/openapi.json", api.client.app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 26
    roles = st.sampled_from([Role.admin, Role.admin, Role.officer, Role.reviewer, Role.auditor])
    cases, failures = 0, {}
    for operation in operations:

        @given(case=strategy(operation, ids, fixture_key_ids), role=roles)
        @settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def fuzz(case, role):
            nonlocal cases
            cases += 1
            case.call_and_validate(headers={**(case.headers or {}), **api.as_(role)}, checks=CHECKS)

        try:
            fuzz()
        except Exception as exc:  # collect every operation's failure, then report them together
            failures[operation.label] = exc
    assert not failures, "\n\n".join(f"{label}: {exc}" for label, exc in failures.items())
    assert cases >= MIN_CASES, cases
