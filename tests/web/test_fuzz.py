"""Every operation of the OpenAPI schema, fuzzed with schemathesis: none may answer 5xx.

Half of the cases carry a genuine signed token for the operation's link, so that the fuzzed forms
reach the code behind the signature check, not only the refusal in front of it. Schemathesis' own
pytest plugin does not load under this pytest, so the operations are driven with Hypothesis here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from course.links import LinkSigner, Purpose

from ..conftest import TEST_SECRET
from .conftest import Site

# The purpose, step and value of a genuine token for each link path.
GENUINE: dict[str, tuple[Purpose, int | None, str | None]] = {
    "confirm": (Purpose.CONFIRM, None, None),
    "exercise": (Purpose.EXERCISE_DONE, 1, None),
    "answer": (Purpose.ANSWER, 0, None),
    "consultation": (Purpose.CONSULTATION, 1, None),
    "resource": (Purpose.RESOURCE, 2, "emotional-bids-quiz"),
    "unsubscribe": (Purpose.UNSUBSCRIBE, 1, None),
    "preferences": (Purpose.PREFERENCES, None, None),
    "my-data": (Purpose.DATA, None, None),
}


def fuzz(operation: Any, genuine_token: str | None) -> Callable[[], None]:
    @given(case=operation.as_strategy(), genuine=st.booleans())
    @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    def never_a_server_error(case: Any, genuine: bool) -> None:
        if genuine and genuine_token and case.path_parameters:
            case.path_parameters["token"] = genuine_token
        response = case.call()
        assert response.status_code < 500, f"{case.method} {case.formatted_path}: {response.status_code}"

    return never_a_server_error


def test_no_endpoint_answers_with_a_server_error(site: Site) -> None:
    alex = site.sign_up_and_confirm()
    signer = LinkSigner(TEST_SECRET, "https://course.example.org")
    schema = schemathesis.openapi.from_asgi("/openapi.json", site.client.app)
    fuzzed = []
    for result in schema.get_all_operations():
        operation = result.ok()  # type: ignore[union-attr]  # an invalid schema raises here, failing the test
        link = GENUINE.get(operation.path.strip("/").split("/")[0])
        fuzz(operation, signer.token(link[0], alex.id, link[1], link[2]) if link else None)()
        fuzzed.append(f"{operation.method.upper()} {operation.path}")
    assert len(fuzzed) == 30, fuzzed  # every page and form of the subscriber's web, and the emails' images
