"""The HTTP error table covers every domain error code; retryable codes are never 400."""

from __future__ import annotations

import json

import pytest

from inference_server.http.errors import RETRYABLE, STATUS, domain_error_response
from modelyard.errors import ErrorCode, ModelyardError


def test_table_covers_every_error_code() -> None:
    assert set(STATUS) == set(ErrorCode)


def test_retryable_codes_answer_503_or_429() -> None:
    assert {STATUS[code] for code in RETRYABLE} <= {429, 503}
    assert STATUS[ErrorCode.UNAVAILABLE] == 503
    assert STATUS[ErrorCode.RESOURCE_EXHAUSTED] == 429


@pytest.mark.parametrize("code", list(ErrorCode))
def test_error_body_names_the_problem(code: ErrorCode) -> None:
    error = ModelyardError(f"something about {code.value}")
    error.code = code
    response = domain_error_response(error)
    assert response.status == STATUS[code]
    assert json.loads(response.body) == {"error": f"something about {code.value}"}
    assert (b"retry-after", b"1") in response.headers or code not in RETRYABLE
