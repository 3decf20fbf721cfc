"""Whatever arrives on the wire, every parser in lk/ (and the chat bot's normalisation of it)
answers with its declared error or a value of its type, never anything else: any bytes,
any JSON, JSON shaped like the payload with the wrong types, numbers out of range, NaN and
infinity, deep nesting, invalid UTF-8, huge strings. Its reason stays short enough to send
back to whoever sent it."""

from __future__ import annotations

import json
import string
from types import ModuleType
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from talkplatform_agents.bots.chat.inbound import ChatIn, from_legacy, from_text_stream
from talkplatform_agents.bots.chat.options import ChatOptions
from talkplatform_agents.errors import TalkPlatformError
from talkplatform_agents.lk import chat, greenroom, waiting
from talkplatform_agents.lk.bot_status import BotsMissing
from talkplatform_agents.lk.ice import IceServer
from talkplatform_agents.lk.naming import RoomRef, parse_room, validate_identity
from talkplatform_agents.lk.payloads import BadPayload, Payload, parse

FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
MAX_REASON = 1000  # characters: a reason is sent back (an RPC error, a chat notice)


def _models(*modules: ModuleType) -> list[type[Payload]]:
    found: dict[str, type[Payload]] = {}
    for module in modules:
        for value in vars(module).values():
            if (
                isinstance(value, type)
                and issubclass(value, Payload)
                and value.__module__ == module.__name__
                and not value.__name__.startswith("_")
            ):
                found[f"{module.__name__}.{value.__name__}"] = value
    return list(found.values())


MODELS = _models(chat, waiting, greenroom)


def _keys(model: type[Payload]) -> list[str]:
    """The JSON keys the model reads (aliases as clients send them)."""
    return [f.alias or name for name, f in model.model_fields.items()]


# -- what arrives ------------------------------------------------------------------------

numbers = st.one_of(
    st.integers(),
    st.integers(min_value=2**63, max_value=2**200),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0, -1, 2**31, 2**64, 1e308, -0.0]),
)
texts = st.one_of(
    st.text(max_size=40),
    st.text(alphabet=st.characters(codec="utf-8"), max_size=40),
    st.sampled_from(["", " ", "\x00", "live", "playback", "microphone", "true", "1"]),
)
json_values: st.SearchStrategy[Any] = st.recursive(
    st.none() | st.booleans() | numbers | texts,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(texts, inner, max_size=5),
    max_leaves=20,
)


def _nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def _as_json(value: Any) -> str:
    return json.dumps(value, allow_nan=True)  # NaN, Infinity: not JSON, yet clients send them


# Text that a client may send as a payload: JSON or not, nested, huge, NUL, surrogates.
raw_texts = st.one_of(
    st.text(max_size=200),
    st.text(alphabet=st.characters(categories=["Cs", "Cc", "Lo"]), max_size=20),
    json_values.map(_as_json),
    st.integers(min_value=1, max_value=100_000).map(_nested),
    st.integers(min_value=1, max_value=3000).map(lambda n: '{"a":' * n + "1" + "}" * n),
    st.integers(min_value=1, max_value=400).map(lambda n: "9" * n * 10),
    st.sampled_from(["NaN", "-Infinity", "1e999", "[1e999]", '"\\ud800"', "{", "{}{}", "\ufeff{}"]),
)
raw_bytes = st.one_of(
    st.binary(max_size=300),
    raw_texts.map(lambda t: t.encode("utf-8", "surrogatepass")),
    st.builds(
        lambda b, t: t.encode("utf-8", "surrogatepass") + b,
        st.binary(min_size=1, max_size=4),
        raw_texts,
    ),
    st.just(b"\xff\xfe not utf-8"),
    st.just(b'{"id": "x", "message": "\xc3\x28"}'),  # invalid UTF-8 inside a JSON string
)


@st.composite
def shaped(draw: st.DrawFn, model: type[Payload]) -> dict[str, Any]:
    """A dict with the model's own keys, any values (the wrong types, mostly), maybe more."""
    keys = _keys(model)
    chosen = draw(st.lists(st.sampled_from(keys), unique=True)) if keys else []
    body: dict[str, Any] = {key: draw(json_values) for key in chosen}
    if draw(st.booleans()):
        body.update(draw(st.dictionaries(texts, json_values, max_size=3)))
    if draw(st.integers(0, 9)) == 0 and keys:
        body[draw(st.sampled_from(keys))] = "x" * draw(st.integers(1_000, 200_000))
    return body


def _check_reason(exc: BaseException) -> None:
    assert isinstance(exc, TalkPlatformError), type(exc)
    assert 0 < len(str(exc)) <= MAX_REASON


# -- the payload parser (RPCs, chat packets) ---------------------------------------------


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
@FAST
@given(data=st.data())
def test_parse_answers_a_model_or_bad_payload(model: type[Payload], data: st.DataObject) -> None:
    payload = data.draw(st.one_of(raw_texts, shaped(model).map(_as_json)), label="payload")
    try:
        result = parse(model, payload)
    except BadPayload as exc:
        _check_reason(exc)
        return
    assert isinstance(result, model)
    # What was accepted can be sent on: finite, and JSON again.
    json.dumps(result.model_dump(mode="json"), allow_nan=False)


@pytest.mark.parametrize("model", [chat.LegacyChatMessage, chat.ReactionIn], ids=str)
@FAST
@given(data=st.data())
def test_parse_lenient_answers_a_model_or_bad_payload(
    model: type[Payload], data: st.DataObject
) -> None:
    payload = data.draw(st.one_of(raw_bytes, shaped(model).map(lambda b: _as_json(b).encode())))
    try:
        result = chat.parse_lenient(model, payload)
    except BadPayload as exc:
        _check_reason(exc)
        return
    assert isinstance(result, model)


def test_parse_names_a_few_problems_briefly() -> None:
    body = {("k" * 5000) + str(i): i for i in range(200)}
    with pytest.raises(BadPayload) as refused:
        parse(greenroom.EmptyRequest, json.dumps(body))
    assert len(str(refused.value)) <= MAX_REASON and "and 195 more" in str(refused.value)
    with pytest.raises(BadPayload, match="recursion"):
        parse(waiting.IdentityRequest, _nested(100_000))


@pytest.mark.parametrize("number", ["NaN", "Infinity", "1e999"])
@pytest.mark.parametrize("key", ["timestamp", "editTimestamp"])
def test_a_legacy_message_has_a_finite_time(key: str, number: str) -> None:
    with pytest.raises(BadPayload, match=key):
        parse(chat.LegacyChatMessage, f'{{"id": "a", "message": "m", "{key}": {number}}}')
    accepted = parse(chat.LegacyChatMessage, f'{{"id": "a", "message": "m", "{key}": 1.5}}')
    assert accepted.timestamp == 1.5 or accepted.edit_timestamp == 1.5


def test_admit_many_takes_identities_of_at_most_128_characters() -> None:
    with pytest.raises(BadPayload, match=r"identities\.0"):
        parse(waiting.IdentitiesRequest, json.dumps({"identities": ["x" * 129]}))
    assert parse(waiting.IdentitiesRequest, '{"identities": ["a"]}').identities == ["a"]


# -- the chat bot's view of a message ----------------------------------------------------


@FAST
@given(
    payload=st.one_of(raw_bytes, shaped(chat.LegacyChatMessage).map(lambda b: _as_json(b).encode()))
)
def test_a_legacy_packet_is_a_message_or_bad_payload(payload: bytes) -> None:
    try:
        result = from_legacy("ann", payload)
    except BadPayload as exc:
        _check_reason(exc)
        return
    assert result is None or isinstance(result, ChatIn)
    if result is not None:
        assert all(validate_identity(i) for i in result.to) and len(result.to) <= 64


attr_values = st.one_of(
    st.text(max_size=50),
    st.lists(st.text(string.ascii_letters + ",@ ", max_size=10), max_size=80).map(",".join),
    st.text(max_size=1).map(lambda c: c * 5000),
)


@FAST
@given(
    stream_id=st.one_of(st.text(max_size=200), st.just("x" * 129)),
    text=st.text(max_size=100),
    attributes=st.one_of(
        st.none(),
        st.dictionaries(
            st.sampled_from([chat.ATTR_RELAY, chat.ATTR_TO, chat.ATTR_REPLY_TO, "other"]),
            attr_values,
        ),
    ),
)
def test_a_text_stream_is_a_message_or_bad_payload(
    stream_id: str, text: str, attributes: dict[str, str] | None
) -> None:
    try:
        result = from_text_stream(stream_id, "ann", text, attributes)
    except BadPayload as exc:
        _check_reason(exc)
        return
    assert 1 <= len(result.id) <= 128 and len(result.to) <= 64
    assert result.reply_to is None or len(result.reply_to) <= 128


# -- other wire documents ----------------------------------------------------------------


@FAST
@given(
    payload=st.one_of(
        raw_bytes,
        raw_texts,
        st.fixed_dictionaries(
            {}, optional={k: json_values for k in ("room", "missing", "since", "looks")}
        ).map(_as_json),
    )
)
def test_a_bots_missing_warning_parses_or_is_bad_payload(payload: str | bytes) -> None:
    try:
        warning = BotsMissing.from_json(payload)
    except BadPayload as exc:  # documented as ValueError, which BadPayload is
        assert isinstance(exc, ValueError)
        _check_reason(exc)
        return
    assert isinstance(warning.room, str) and isinstance(warning.since_ms, int)
    assert not isinstance(warning.looks, bool)


@FAST
@given(
    room=st.text(max_size=30),
    missing=st.lists(st.text(max_size=10), max_size=3),
    since=st.integers(min_value=0, max_value=2**63),
    looks=st.integers(min_value=0, max_value=10_000),
)
def test_a_bots_missing_warning_round_trips(
    room: str, missing: list[str], since: int, looks: int
) -> None:
    warning = BotsMissing(room, tuple(missing), since, looks)
    assert BotsMissing.from_json(warning.to_json()) == warning
    assert BotsMissing.from_json(warning.to_json().encode()) == warning


@FAST
@given(
    document=st.one_of(
        json_values,
        st.fixed_dictionaries(
            {}, optional={"urls": json_values, "username": json_values, "credential": json_values}
        ),
        st.fixed_dictionaries(
            {"urls": st.lists(st.sampled_from(["stun:a", "turn:b", "turns:c:5349", "http://x"]))}
        ),
    )
)
def test_an_ice_server_parses_or_is_a_value_error(document: Any) -> None:
    try:
        server = IceServer.from_json(document)
    except ValueError as exc:
        assert str(exc)
        return
    assert server.urls and all(isinstance(u, str) for u in server.urls)


@FAST
@given(room=st.one_of(st.text(), st.text(max_size=5).map(lambda s: f"meeting-{s}-lobby")))
def test_any_room_name_says_what_it_is(room: str) -> None:
    assert isinstance(parse_room(room), RoomRef)


@FAST
@given(chat_policy=json_values, extra=st.dictionaries(texts, json_values, max_size=2))
def test_a_meetings_chat_policy_applies_or_is_a_value_error(
    chat_policy: Any, extra: dict[str, Any]
) -> None:
    settings_ = {"chat": chat_policy, **extra}
    if isinstance(chat_policy, dict):
        settings_["chat"] = {**chat_policy, **extra}
    try:
        options = ChatOptions().for_meeting(settings_)
    except ValueError as exc:
        assert str(exc)
        return
    assert isinstance(options, ChatOptions) and 0 <= options.history_size <= 500
