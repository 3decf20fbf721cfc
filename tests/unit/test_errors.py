"""The package's one error tree."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest

import talkplatform_agents
from talkplatform_agents import TalkPlatformError
from talkplatform_agents.errors import (
    ApiError,
    BadGateway,
    Conflict,
    Forbidden,
    Gone,
    Invalid,
    NotFound,
    Unauthorized,
    Unavailable,
)


def _package_exceptions() -> list[type[BaseException]]:
    found: list[type[BaseException]] = []
    for module_info in pkgutil.walk_packages(talkplatform_agents.__path__, "talkplatform_agents."):
        if ".migrations." in module_info.name or module_info.name.endswith("__main__"):
            continue  # Alembic's scripts; the CLI's entry point runs on import
        module = importlib.import_module(module_info.name)
        for _, value in inspect.getmembers(module, inspect.isclass):
            if issubclass(value, BaseException) and value.__module__ == module.__name__:
                found.append(value)
    return found


def test_every_exception_of_the_package_derives_from_the_root() -> None:
    found = _package_exceptions()
    names = {e.__name__ for e in found}
    assert {"WorkerError", "HarnessError", "SyntheticError", "BadPayload", "Unavailable"} <= names
    assert [e for e in found if not issubclass(e, TalkPlatformError)] == []


@pytest.mark.parametrize(
    ("error", "status", "code"),
    [
        (Invalid, 400, "invalid_request"),
        (Unauthorized, 401, "unauthorized"),
        (Forbidden, 403, "forbidden"),
        (NotFound, 404, "not_found"),
        (Conflict, 409, "conflict"),
        (Gone, 410, "gone"),
        (BadGateway, 502, "bad_gateway"),
        (Unavailable, 503, "unavailable"),
    ],
)
def test_each_api_error_carries_status_code_message_and_context(
    error: type[ApiError], status: int, code: str
) -> None:
    raised = error("it went wrong", meetingId="m1")
    assert isinstance(raised, TalkPlatformError)
    assert (raised.status, raised.code, str(raised)) == (status, code, "it went wrong")
    assert raised.body() == {"error": {"code": code, "message": "it went wrong", "meetingId": "m1"}}
