"""The label itself: members, canonical JSON, validation, provider codes, ProduceIDs."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from synthguard.aigc import MEMBERS, AigcLabel, ProduceID, ProviderCode, validate_uscc
from synthguard.errors import InvalidLabelError, InvalidProviderCodeError

REAL = "001191110102MACQD9K64010000"  # seen in real files


def label(**kw: str) -> AigcLabel:
    base = {"Label": "1", "ContentProducer": REAL, "ProduceID": "00000000000000AB"}
    base.update(kw)
    return AigcLabel(**base)


def test_canonical_json_has_seven_members_in_order_and_no_spaces() -> None:
    text = label().to_json()
    assert " " not in text
    assert list(json.loads(text)) == list(MEMBERS)
    assert text.startswith('{"Label":"1","ContentProducer":"0011911')


def test_parse_accepts_flat_wrapped_and_partial_forms() -> None:
    flat = label()
    assert AigcLabel.parse(flat.to_json()) == flat
    assert AigcLabel.parse(json.dumps({"AIGC": flat.to_dict()})) == flat
    partial = {"Label": "1", "ContentProducer": REAL, "ProduceID": "00000000000000AB"}
    assert AigcLabel.parse(json.dumps(partial)) == flat
    assert AigcLabel.parse(b"\xef\xbb\xbf" + flat.to_json().encode()) == flat
    assert AigcLabel.parse(json.dumps({**partial, "Label": 1})).Label == "1"


@pytest.mark.parametrize(
    "text",
    [
        "",
        "[]",
        "{",
        "null",
        '"x"',
        '{"Label":"4","ContentProducer":"a","ProduceID":"b"}',
        '{"Label":"1","ContentProducer":"","ProduceID":"b"}',
        '{"Label":"1","ContentProducer":"a","ProduceID":"b","Extra":"x"}',
        '{"Label":"1","ContentProducer":"a\\u4e2d","ProduceID":"b"}',
        '{"Label":"1","ContentProducer":["a"],"ProduceID":"b"}',
        "[" * 100000,
    ],
)
def test_parse_rejects_malformed_labels(text: str) -> None:
    with pytest.raises(InvalidLabelError):
        AigcLabel.parse(text)


def test_platform_label_without_producer_is_allowed() -> None:
    made = AigcLabel(Label="2", ContentProducer="", ProduceID="", ContentPropagator=REAL, PropagateID="1")
    assert made.Label == "2"


def test_writing_rules_are_stricter_than_reading() -> None:
    lenient = label(ProduceID="id with spaces")
    with pytest.raises(InvalidLabelError, match="not written"):
        lenient.validate_for_writing()
    with pytest.raises(InvalidLabelError, match="more than"):
        label(ReservedCode1="x" * 600).validate_for_writing()
    assert label(ReservedCode1="SG1.ED25519.ab.SHA256.a-b_c").validate_for_writing()


@given(st.dictionaries(st.sampled_from(MEMBERS), st.text(max_size=20)))
def test_parse_never_raises_anything_but_invalid_label(members: dict[str, str]) -> None:
    try:
        parsed = AigcLabel.parse(json.dumps(members))
    except InvalidLabelError:
        return
    assert AigcLabel.parse(parsed.to_json()) == parsed


def test_provider_code_accepts_real_and_demo_codes() -> None:
    code = ProviderCode.parse(REAL)
    assert code.uscc == "91110102MACQD9K640"
    assert code.service == "10000"
    assert str(ProviderCode.parse("001191110108DEMQ00018H10001")) == "001191110108DEMQ00018H10001"


@pytest.mark.parametrize(
    ("code", "reason"),
    [
        (REAL[:-1], "27 characters"),
        ("10" + REAL[2:], "starts with 00"),
        ("0021" + REAL[4:], "characters 3-4"),
        (REAL[:21] + "1" + REAL[22:], "check character"),  # USCC check broken
        (REAL[:20] + "5" + REAL[21:], "organisation code"),  # org check digit broken
        (REAL[:22] + "30000", "service characters"),
        (REAL[:6] + "A" + REAL[7:], "administrative division"),
        (REAL.lower(), "digits and upper-case"),
    ],
)
def test_provider_code_rejections_say_why(code: str, reason: str) -> None:
    with pytest.raises(InvalidProviderCodeError, match=reason):
        ProviderCode.parse(code)


def test_uscc_letters_allowed_in_first_two_positions() -> None:
    from synthguard.aigc import _org_code_check_char, _uscc_check_char

    org = "MA01234" + "5"
    org += _org_code_check_char(org)
    body = "Y1110108" + org
    validate_uscc(body + _uscc_check_char(body))


def test_produce_id_is_16_upper_hex_and_round_trips_64_bits() -> None:
    ids = {ProduceID.new() for _ in range(1000)}
    assert len(ids) == 1000
    assert all(ProduceID.is_valid(i) for i in ids)
    assert ProduceID.from_int(ProduceID.to_int("FFFFFFFFFFFFFFFF")) == "FFFFFFFFFFFFFFFF"
    with pytest.raises(InvalidLabelError):
        ProduceID.to_int("abc")
    with pytest.raises(InvalidLabelError):
        ProduceID.from_int(1 << 64)
