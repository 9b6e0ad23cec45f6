"""Normalisation: each step on the evasion it undoes, the offset map, batch forms, bad input."""

from __future__ import annotations

import unicodedata

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from synthguard.errors import UsageError
from synthguard.review import _homophones
from synthguard.review.normalize import (
    ALL_STEPS,
    DEFAULT_STEPS,
    SMALL_CHARS,
    Normalization,
    _normalize_small,
    _normalize_terms_arrays,
    codepoints,
    coerce_text,
    normalize,
    normalize_codepoints,
    normalize_terms,
    parse_steps,
    term_forms,
)

N = Normalization


def norm(text: str, *steps: Normalization) -> str:
    return normalize(text, frozenset(steps)).text


# --- each step ---------------------------------------------------------------------------------------


def test_nfkc_compatibility_forms() -> None:
    assert norm("㈱", N.NFKC) == "(株)"
    assert norm("𝐟𝐮𝐜𝐤", N.NFKC) == "fuck"  # mathematical bold letters
    assert norm("ﬁx", N.NFKC) == "fix"
    assert norm("ＡＢ", N.NFKC) == "AB"
    assert norm("㈱", N.T2S) == "㈱"  # without the step, nothing happens


def test_nfkc_expansion_maps_back_to_one_character() -> None:
    n = normalize("a㈱b", {N.NFKC})
    assert n.text == "a(株)b"
    assert n.origin.tolist() == [0, 1, 1, 1, 2]
    assert n.original_span(2, 3) == (1, 2)  # 株 alone -> the whole ㈱


def test_width() -> None:
    assert norm("ＡＢＣ１２！\u3000ｘ", N.WIDTH) == "ABC12! x"
    assert norm("ＡＢＣ", N.CASE) == "ａｂｃ"  # case folding alone keeps the width


def test_t2s_is_character_level_and_keeps_length() -> None:
    assert norm("臺灣獨立", N.T2S) == "台湾独立"
    assert norm("頭髮", N.T2S) == "头发"
    # Phrase tables are not used (module docstring): 乾 is converted even where OpenCC's phrases keep it.
    assert norm("乾隆", N.T2S) == "干隆"
    text = "說話龍飛鳳舞，藝術" * 3
    assert len(norm(text, N.T2S)) == len(text)


def test_case_folding_with_expansion() -> None:
    n = normalize("StraßE", {N.CASE})
    assert n.text == "strasse"
    assert n.original_span(4, 6) == (4, 5)  # "ss" -> ß
    assert norm("ÀÉÎ", N.CASE) == "àéî"


@pytest.mark.parametrize(
    ("evasive", "expected"),
    [
        ("法 轮 功", "法轮功"),
        ("法.轮*功", "法轮功"),
        ("法\u200b轮\u200d功", "法轮功"),  # zero-width space and joiner
        ("法\u00ad轮\u2060功", "法轮功"),  # soft hyphen, word joiner
        ("法\U000e0020轮\ufe0f功", "法轮功"),  # tag space, variation selector
        ("f\u0336u\u0336c\u0336k", "fuck"),  # combining strokes
        ("法💥轮★功", "法轮功"),  # emoji and symbols
        ("法\n轮\t功", "法轮功"),  # vertical writing
        ("法\u3164轮", "法轮"),  # Hangul filler (a letter by category, invisible in practice)
        ("法\ue000轮", "法轮"),  # private use
    ],
)
def test_strip_removes_insertions(evasive: str, expected: str) -> None:
    assert norm(evasive, N.STRIP) == expected


def test_strip_keeps_sentence_punctuation_and_decimal_points() -> None:
    assert norm("门口，交给他。", N.STRIP) == "门口。交给他。"
    assert norm("路口、交通！", N.STRIP) == "路口。交通。"
    assert norm("增长6.4%，共1,000人", N.STRIP) == "增长6.4。共1,000人"
    assert norm("a.b 6. 4", N.STRIP) == "ab6.4"  # a dot between digits, spaces aside, stays


@pytest.mark.parametrize(
    ("evasive", "expected"),
    [
        ("⑥④", "64"),
        ("⑴⑵", "12"),
        ("⒍⒋", "64"),
        ("❻❹", "64"),
        ("６４", "64"),
        ("⑩", "10"),
        ("六四", "64"),
        ("陆肆", "64"),
        ("陸肆", "64"),
        ("6四", "64"),
        ("八九六四", "8964"),
        ("幺幺零", "110"),
    ],
)
def test_numerals(evasive: str, expected: str) -> None:
    assert norm(evasive, N.NUMERALS) == expected


def test_chinese_digits_only_where_used_as_numerals() -> None:
    assert norm("一起去队伍里", N.NUMERALS) == "一起去队伍里"  # lone digits are words
    assert norm("三十", N.NUMERALS) == "三十"  # positional characters are not interpreted
    assert norm("六 四", *DEFAULT_STEPS) == "64"  # a run once inserted spaces are gone


def test_repeat_collapses_runs_and_maps_to_the_first() -> None:
    n = normalize("法法法轮轮功", {N.REPEAT})
    assert n.text == "法轮功"
    assert n.origin.tolist() == [0, 3, 5]
    assert norm("法法法轮轮功", *DEFAULT_STEPS) == "法法法轮轮功"  # not in the default set


def test_homophone_classes() -> None:
    steps = (N.HOMOPHONE,)
    assert norm("发", *steps) == norm("法", *steps) == norm("珐", *steps)
    assert norm("论", *steps) == norm("轮", *steps)
    assert norm("特么", *steps) == norm("他妈", *steps)  # hand-curated near-homophones
    assert norm("法", *steps) != norm("饭", *steps)
    assert norm("abc", *steps) == "abc"


def test_pinyin_and_its_offsets() -> None:
    n = normalize("我练法輪功", DEFAULT_STEPS | {N.PINYIN})
    assert n.text == "wolianfalungong"
    assert n.original_span(6, 15) == (2, 5)
    assert n.original_span(7, 8) == (2, 3)  # inside one syllable: its character
    assert norm("绿", N.PINYIN) == "lv"  # ü spelled v, as pypinyin's Style.NORMAL does


def test_initials() -> None:
    assert norm("法轮功", N.INITIALS) == "FLG"  # upper case: from readings
    assert norm("中国", N.INITIALS) == "ZG"  # zh -> z
    assert norm("FLG", N.INITIALS) == "flg"  # lower case: typed
    assert norm("法lg", N.INITIALS) == "Flg"


def test_default_steps_compose() -> None:
    n = normalize("法 輪 ① ＦＵＮ", DEFAULT_STEPS)
    assert n.text == "法轮1fun"
    assert n.original_span(0, 2) == (0, 3)
    assert n.original_span(3, 6) == (6, 9)


# --- the offset map ------------------------------------------------------------------------------

_TEXT = st.text(
    alphabet=st.sampled_from([*"法輪功六四 .*\u200b㈱ßＡaB①⒈陆，。6壹⑩ﬁ\u3000特么", "\U0001f4a5", "\u0336"]),
    max_size=40,
)
_STEP_SETS = st.sampled_from(
    [
        DEFAULT_STEPS,
        DEFAULT_STEPS | {N.REPEAT},
        DEFAULT_STEPS | {N.PINYIN},
        DEFAULT_STEPS | {N.INITIALS},
        DEFAULT_STEPS | {N.HOMOPHONE, N.REPEAT},
        frozenset({N.NFKC}),
        frozenset(),
    ]
)


@settings(max_examples=150, deadline=None)
@given(_TEXT, _STEP_SETS)
def test_offset_map_is_monotone_and_in_range(text: str, steps: frozenset[Normalization]) -> None:
    n = normalize(text, steps)
    origin = n.origin
    assert len(origin) == len(n.text)
    assert np.all(np.diff(origin) >= 0)
    assert np.all((origin >= 0) & (origin < max(len(text), 1)))
    for i in range(len(n.text)):
        for j in range(i + 1, min(len(n.text), i + 4) + 1):
            start, end = n.original_span(i, j)
            assert 0 <= start < end <= len(text)
            assert (start, end) == (int(origin[i]), int(origin[j - 1]) + 1)


@settings(max_examples=200, deadline=None)
@given(_TEXT, _STEP_SETS)
def test_small_and_vectorised_paths_agree(text: str, steps: frozenset[Normalization]) -> None:
    small, small_origin = _normalize_small(text, steps)
    out, offsets = normalize_codepoints(codepoints(text), steps)
    assert small == out.tolist()
    assert small_origin == offsets.full().tolist()


@settings(max_examples=100, deadline=None)
@given(st.lists(_TEXT, min_size=1, max_size=6), _STEP_SETS)
def test_batch_forms_equal_one_by_one(terms: list[str], steps: frozenset[Normalization]) -> None:
    one_by_one = [normalize(t, steps).text for t in terms]
    assert normalize_terms(terms, steps) == one_by_one
    assert _normalize_terms_arrays(terms, steps) == one_by_one


def test_long_texts_take_the_vectorised_path() -> None:
    text = "法 輪 ① ＦＵＮ，" * (SMALL_CHARS // 5)
    n = normalize(text, DEFAULT_STEPS | {N.PINYIN})
    assert n.text == "falun1fun。" * (SMALL_CHARS // 5)
    assert n.original_span(0, 5) == (0, 3)
    assert n.original_span(10, 15) == (10, 13)


def test_identity_without_steps() -> None:
    text = "Any text 任何文字 ①"
    n = normalize(text, frozenset())
    assert n.text == text
    assert n.origin.tolist() == list(range(len(text)))


def test_spans_at_the_edges() -> None:
    n = normalize(" ab ", DEFAULT_STEPS)
    assert n.text == "ab"
    assert n.original_span(0, 2) == (1, 3)
    assert n.original_span(2, 2) == (4, 4)
    assert n.original_span(1, 1) == (2, 2)
    with pytest.raises(UsageError):
        n.original_span(1, 3)


def test_term_forms_add_the_phrase_reading() -> None:
    (forms,) = term_forms(["重庆"], DEFAULT_STEPS | {N.PINYIN})
    assert forms == {"zhongqing", "chongqing"}
    (forms,) = term_forms(["重庆"], DEFAULT_STEPS | {N.INITIALS})
    assert forms == {"ZQ", "CQ"}
    (forms,) = term_forms(["重庆"], DEFAULT_STEPS)
    assert forms == {"重庆"}
    (forms,) = term_forms(["***"], DEFAULT_STEPS)
    assert forms == frozenset()


# --- steps and input -----------------------------------------------------------------------------


def test_parse_steps() -> None:
    assert parse_steps(["nfkc", N.CASE]) == {N.NFKC, N.CASE}
    assert {s.value for s in ALL_STEPS} == {
        "nfkc", "width", "t2s", "case", "strip", "numerals", "repeat", "pinyin", "initials", "homophone",
    }  # fmt: skip
    assert {s.value for s in DEFAULT_STEPS} == {"nfkc", "width", "t2s", "case", "strip", "numerals"}
    with pytest.raises(UsageError, match="unknown normalisation"):
        parse_steps(["soundex"])
    with pytest.raises(UsageError, match="exclude each other"):
        parse_steps([N.PINYIN, N.INITIALS])


def test_bytes_input_and_invalid_utf8() -> None:
    assert normalize("法 轮".encode()).text == "法轮"
    with pytest.raises(UsageError, match=r"not valid UTF-8.*offset 3"):
        normalize(b"abc\xff\xfe")
    with pytest.raises(UsageError, match="not valid UTF-8"):
        normalize("法".encode()[:2])


def test_lone_surrogates() -> None:
    with pytest.raises(UsageError, match="surrogate"):
        normalize("ab\udc80")


def test_size_limit() -> None:
    with pytest.raises(UsageError, match="exceeds the limit"):
        normalize("a" * 101, max_bytes=100)
    with pytest.raises(UsageError, match="exceeds the limit"):
        normalize("法" * 34, max_bytes=100)  # 34 characters, 102 UTF-8 bytes
    with pytest.raises(UsageError, match="exceeds the limit"):
        normalize(b"a" * 101, max_bytes=100)
    assert len(normalize("法" * 33, max_bytes=100).text) == 33
    with pytest.raises(UsageError, match="str or UTF-8 bytes"):
        coerce_text(123)  # type: ignore[arg-type]


# --- the homophone table -------------------------------------------------------------------------


def test_homophone_table_is_consistent() -> None:
    members: list[str] = []
    representatives = {g.representative for g in _homophones.GROUPS}
    readings = _homophones.primary_readings()
    for group in _homophones.GROUPS:
        assert len(group.representative) == 1 and group.note
        for member in group.members:
            assert unicodedata.name(member).startswith("CJK UNIFIED IDEOGRAPH")
            assert member != group.representative
            assert member not in representatives, f"{member} is also a representative"
            # Same reading: pypinyin already puts it in the class; the table is for the others.
            assert readings.get(ord(member)) != readings.get(ord(group.representative)), member
        members.extend(group.members)
    assert len(members) == len(set(members)), "a character in two groups"


def test_readings_are_plain_letters() -> None:
    readings = _homophones.primary_readings()
    assert readings[ord("法")] == "fa"
    assert readings[ord("女")] == "nv"
    assert all(r.isascii() and r.isalpha() and r.islower() for r in readings.values())
