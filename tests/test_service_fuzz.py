"""A bounded schemathesis run against a live server: no generated request gets a 5xx.

Every operation of the OpenAPI document gets ``EXAMPLES`` generated requests (derandomized:
the same cases every run), sent over real HTTP with a valid token, so the cases reach the
routes' logic rather than stopping at 401. A second pass sends them without a token.
"""

# ruff: noqa: F811  (pytest fixtures imported from service_fixtures shadow their names)
from __future__ import annotations

import pytest
from service_fixtures import LiveServer, ray_address  # noqa: F401  (fixtures)

EXAMPLES = 20


@pytest.fixture(scope="module")
def fuzzed(ray_address, tmp_path_factory):
    server = LiveServer(tmp_path_factory.mktemp("fuzz"))
    yield server
    server.stop()


def _operations():
    import schemathesis

    from service.api import create_app

    schema = schemathesis.openapi.from_dict(create_app().openapi())
    return [result.ok() for result in schema.get_all_operations()]


def test_the_openapi_documents_every_problem_as_problem_json():
    from service.api import create_app

    schema = create_app().openapi()
    assert "HTTPValidationError" not in schema["components"]["schemas"]
    for path, methods in schema["paths"].items():
        for method, op in methods.items():
            if path == "/v1/health":
                continue
            for status in ("401", "403", "413", "422", "429", "503"):
                content = op["responses"][status]["content"]
                assert list(content) == ["application/problem+json"], (method, path, status)
                assert content["application/problem+json"]["schema"]["$ref"].endswith("Problem")


@pytest.mark.parametrize("authenticated", [True, False], ids=["token", "anonymous"])
def test_generated_requests_never_get_a_server_error(fuzzed, authenticated):
    from hypothesis import HealthCheck, given, settings

    headers = {"Authorization": f"Bearer {fuzzed.tokens['alice']}"} if authenticated else {}
    errors, sent = [], []

    def fuzz(operation) -> None:
        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES if authenticated else 3,
            deadline=None,
            derandomize=True,
            suppress_health_check=list(HealthCheck),
            database=None,
        )
        def check(case):
            response = case.call(base_url=fuzzed.url, headers=headers, timeout=30)
            sent.append(response.status_code)
            if response.status_code >= 500:
                errors.append((operation.label, response.status_code, response.text[:200]))

        check()

    for operation in _operations():
        fuzz(operation)
    assert len(sent) >= (300 if authenticated else 30)
    assert errors == []
    print(f"\n[fuzz] {len(sent)} generated requests, statuses {sorted(set(sent))}, 0 5xx")
