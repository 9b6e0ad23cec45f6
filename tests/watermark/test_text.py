"""The text watermark: invisible, keyed, repeated; survives JSON, HTML and Unicode normalisation."""

from __future__ import annotations

import html
import json
import re
import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from synthguard.errors import UsageError
from synthguard.watermark.text import MAX_WINDOWS, PACKET_CHARS, SCHEME, TAG_BITS, detect_text, embed_text

SECRET = b"text-test-secret-0123456789"
PID = "0123456789ABCDEF"
SELECTORS = re.compile("[\ufe00-\ufe0f\U000e0100-\U000e01ef]")

ENGLISH = (
    "Generated content must carry labels. Readers should know when a machine wrote what they read, "
    "and platforms should be able to check it without asking anyone. "
) * 6
CHINESE = "人工智能生成合成内容标识办法要求服务提供者对生成内容添加显式标识和隐式标识。" * 8


def visible(text: str) -> str:
    return SELECTORS.sub("", text)


@pytest.mark.parametrize("text", [ENGLISH, CHINESE, "Short.", "数字 42"])
def test_round_trip_is_invisible(text: str) -> None:
    marked = embed_text(text, PID, SECRET)
    assert visible(marked) == text
    detection = detect_text(marked, SECRET)
    assert detection.found
    assert detection.produce_id == PID
    assert detection.scheme == SCHEME
    assert detection.p_value == detection.details["windows_tried"] * 2.0**-TAG_BITS
    assert detection.p_value < 1e-6


def test_packet_repeats_so_pieces_carry_it() -> None:
    marked = embed_text(ENGLISH, PID, SECRET, every=100)
    assert detect_text(marked, SECRET).details["packets"] >= len(ENGLISH) // 100
    piece = marked[len(marked) // 2 : len(marked) // 2 + 200]
    assert detect_text(piece, SECRET).produce_id == PID


@pytest.mark.parametrize(
    "transport",
    [
        lambda t: json.loads(json.dumps(t)),
        lambda t: json.loads(json.dumps(t, ensure_ascii=False)),
        lambda t: json.loads(json.dumps({"choices": [{"text": t}]}))["choices"][0]["text"],
        lambda t: html.unescape(html.escape(t)),
        lambda t: html.unescape(t.encode("ascii", "xmlcharrefreplace").decode("ascii")),
        lambda t: t.encode("utf-16").decode("utf-16"),
        lambda t: unicodedata.normalize("NFC", t),
        lambda t: unicodedata.normalize("NFKC", t),
        lambda t: unicodedata.normalize("NFKD", t),
    ],
    ids=["json", "json-utf8", "json-nested", "html", "html-charrefs", "utf16", "nfc", "nfkc", "nfkd"],
)
def test_survives_copy_through_json_html_and_normalisation(transport: object) -> None:
    marked = embed_text(ENGLISH + CHINESE, PID, SECRET)
    assert callable(transport)
    assert detect_text(transport(marked), SECRET).produce_id == PID


def test_known_fragility_cleaners_that_strip_marks() -> None:
    """Documented: a cleaner that removes non-spacing marks or variation selectors removes the mark."""
    marked = embed_text(ENGLISH, PID, SECRET)
    stripped = "".join(c for c in marked if unicodedata.category(c) != "Mn")
    assert not detect_text(stripped, SECRET).found
    assert not detect_text(marked.encode("ascii", "ignore").decode(), SECRET).found


def test_wrong_key_and_unmarked_text_find_nothing() -> None:
    marked = embed_text(ENGLISH, PID, SECRET)
    wrong = detect_text(marked, b"another-secret-0123456789")
    assert not wrong.found
    assert wrong.produce_id is None
    assert wrong.p_value == 1.0
    assert wrong.details["windows_tried"] > 0
    plain = detect_text(ENGLISH + "Emoji ❤️ and flags 🇨🇳", SECRET)
    assert not plain.found
    assert plain.p_value == 1.0


def test_emoji_sequences_and_combining_marks_are_not_split() -> None:
    text = "Love ❤️ café 👩‍💻 re\u0301sume\u0301 done"
    marked = embed_text(text, PID, SECRET, every=16)
    assert visible(marked) == visible(text)
    for sequence in ["❤️", "👩‍💻", "e\u0301"]:
        assert sequence in marked
    assert detect_text(marked, SECRET).produce_id == PID


def test_existing_marks_are_kept() -> None:
    first = embed_text(ENGLISH, PID, SECRET)
    both = embed_text(first, "00000000000000FF", SECRET)
    assert visible(both) == ENGLISH
    ids = detect_text(both, SECRET).details["produce_ids"]
    assert ids == ["00000000000000FF", PID]


@pytest.mark.parametrize(
    ("text", "produce_id", "secret", "every", "message"),
    [
        ("...  !!!", PID, SECRET, 120, "no letter"),
        ("", PID, SECRET, 120, "no letter"),
        (ENGLISH, "not-an-id", SECRET, 120, "ProduceID"),
        (ENGLISH, PID, b"short", 120, "secret"),
        (ENGLISH, PID, SECRET, PACKET_CHARS - 1, "every"),
    ],
)
def test_bad_arguments(text: str, produce_id: str, secret: bytes, every: int, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        embed_text(text, produce_id, secret, every=every)


def test_bad_threshold() -> None:
    with pytest.raises(UsageError, match="threshold"):
        detect_text(ENGLISH, SECRET, threshold=2.0)


@settings(max_examples=200, deadline=None)
@given(st.text())
def test_detect_never_fails_on_any_text(text: str) -> None:
    detection = detect_text(text, SECRET)
    assert not detection.found
    assert 0.0 <= detection.p_value <= 1.0


@settings(max_examples=100, deadline=None)
@given(st.text(min_size=1).filter(lambda t: any(c.isalnum() for c in t)), st.integers(0, 2**64 - 1))
def test_any_text_with_a_letter_round_trips(text: str, value: int) -> None:
    produce_id = f"{value:016X}"
    try:
        marked = embed_text(text, produce_id, SECRET)
    except UsageError:
        # isalnum() is wider than "a letter or digit not followed by a mark": nothing to attach to.
        return
    detection = detect_text(marked, SECRET)
    assert detection.produce_id == produce_id
    # The mark only adds whole packets: every character of the text is still there, in order.
    assert len(marked) - len(text) == PACKET_CHARS * detection.details["packets"]


def test_hostile_runs_of_selectors_are_bounded() -> None:
    hostile = "a" + "\U000e0100" * (MAX_WINDOWS + 100)
    detection = detect_text(hostile, SECRET)
    assert not detection.found
    assert detection.details["windows_tried"] == MAX_WINDOWS
    assert detection.details["truncated"] is True
