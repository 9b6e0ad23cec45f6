"""Keyword matching: offsets, attribution, allow-list, whole words, chunks, limits; risk codes."""

from __future__ import annotations

import random

import pytest

from synthguard.errors import UsageError
from synthguard.review.keywords import Action, KeywordEntry, KeywordIndex, Match, mask
from synthguard.review.normalize import DEFAULT_STEPS, Normalization
from synthguard.review.risks import LibraryMinimums, RiskCategory, is_a1, is_a2

N = Normalization
R = RiskCategory


def entry(
    entry_id: str, term: str, action: Action = Action.BLOCK, extra: frozenset[Normalization] = frozenset()
) -> KeywordEntry:
    return KeywordEntry(entry_id, term, R.A1_6, action, DEFAULT_STEPS | extra)


@pytest.fixture(scope="module")
def index() -> KeywordIndex:
    return KeywordIndex.build(
        [
            entry("kj", "口交"),
            entry("lk", "路口交通", Action.ALLOW),
            entry("hp", "黄片", Action.REVIEW),
            entry("shp", "三黄片", Action.ALLOW),
            entry("ass", "ass", Action.MASK),
            entry("64", "六四"),
            entry("dp", "毒品", extra=frozenset({N.REPEAT})),
            entry("flg", "法轮功", extra=frozenset({N.PINYIN})),
            entry("flg-i", "法轮功", extra=frozenset({N.INITIALS})),
            entry("cq", "重庆", extra=frozenset({N.HOMOPHONE})),
            entry("fa", "法", extra=frozenset({N.PINYIN})),
            entry("haha", "哈哈"),
            entry("ty", "台独"),
        ]
    )


def found(index: KeywordIndex, text: str) -> list[tuple[str, str]]:
    return [(m.entry_id, text[m.start : m.end]) for m in index.scan(text)]


def test_match_fields_and_original_offsets(index: KeywordIndex) -> None:
    text = "他说：口 交。"
    (m,) = index.scan(text)
    assert m == Match("kj", "口交", R.A1_6, Action.BLOCK, 3, 6, (N.STRIP,))
    assert text[m.start : m.end] == "口 交"


@pytest.mark.parametrize(
    ("text", "needed"),
    [
        ("台独", ()),
        ("臺獨", (N.T2S,)),
        ("台\u200b独", (N.STRIP,)),
        ("臺 獨", (N.T2S, N.STRIP)),
        ("陆肆", (N.NUMERALS,)),
        ("ＡＳＳ", (N.WIDTH, N.CASE)),  # NFKC would do too: the first redundant step goes
        ("毒毒毒品", (N.REPEAT,)),
    ],
)
def test_attribution_names_the_steps_needed(index: KeywordIndex, text: str, needed: tuple[N, ...]) -> None:
    (m,) = index.scan(text)
    assert m.normalizations == needed


def test_allow_list_shadows_denied_words_inside(index: KeywordIndex) -> None:
    assert found(index, "前面路口交通拥堵") == []
    assert found(index, "他吃了三黄片") == []
    assert found(index, "路口 交通") == []  # the allowed phrase is normalised too
    # Outside the allowed phrase, the denied word still counts.
    assert found(index, "路口交通和口交") == [("kj", "口交")]
    assert found(index, "口交通") == [("kj", "口交")]  # not the whole allowed phrase


def test_english_whole_words(index: KeywordIndex) -> None:
    assert found(index, "a class of glass") == []
    assert found(index, "assess the pass") == []
    assert found(index, "you ass!") == [("ass", "ass")]
    assert found(index, "a.s.s") == [("ass", "a.s.s")]
    assert found(index, "我ass了") == [("ass", "ass")]
    assert found(index, "ＡＳＳ") == [("ass", "ＡＳＳ")]


def test_digits_do_not_match_inside_numbers(index: KeywordIndex) -> None:
    assert found(index, "1964年") == []
    assert found(index, "一六四五年") == []
    assert found(index, "增长6.4%") == []
    assert found(index, "收入64.5亿元") == []
    assert found(index, "六四事件") == [("64", "六四")]
    assert found(index, "6 四") == [("64", "6 四")]


def test_plain_numbers_do_not_stand_for_chinese_numerals(index: KeywordIndex) -> None:
    assert found(index, "共64人") == []
    assert found(index, "６４％") == []
    assert found(index, "6 4") == []
    assert found(index, "⑥④") == [("64", "⑥④")]
    digits = KeywordIndex.build([entry("n", "64")])  # a library that wants the number lists it
    assert [m.entry_id for m in digits.scan("共64人")] == ["n"]
    assert digits.scan("1964年") == []


def test_readings_never_cut_a_character(index: KeywordIndex) -> None:
    assert found(index, "吃饭") == []  # fan holds "fa" but is not 法
    assert found(index, "说法") == [("fa", "法")]
    assert found(index, "发论攻") == [("fa", "发"), ("flg", "发论攻")]


def test_pinyin_typed_inside_a_word_is_not_a_match(index: KeywordIndex) -> None:
    assert ("flg", "falungong") in found(index, "I read falungong.")
    assert all(e != "flg" for e, _ in found(index, "xfalungongx"))


def test_initials_need_typed_letters(index: KeywordIndex) -> None:
    assert ("flg-i", "FLG") in found(index, "我练 FLG 啊")
    assert ("flg-i", "法lg") in found(index, "我的法lg呢")
    assert ("flg-i", "法輪功") in found(index, "法輪功")  # the term itself
    assert all(e != "flg-i" for e, _ in found(index, "反领过来"))  # same initials, not the term
    assert all(e != "flg-i" for e, _ in found(index, "aflgb"))


def test_homophones_and_phrase_readings(index: KeywordIndex) -> None:
    assert found(index, "崇庆火锅") == [("cq", "崇庆")]  # chong qing: the phrase reading of 重庆
    assert found(index, "众庆") == [("cq", "众庆")]  # zhong qing: the character reading


def test_overlapping_matches_of_one_entry_are_reported_once(index: KeywordIndex) -> None:
    assert [(m.start, m.end) for m in index.scan("哈哈哈")] == [(0, 2)]
    assert [(m.start, m.end) for m in index.scan("哈哈哈哈")] == [(0, 2), (2, 4)]


def test_bytes_input(index: KeywordIndex) -> None:
    text = "他说口交"
    assert index.scan(text.encode()) == index.scan(text)
    with pytest.raises(UsageError, match="not valid UTF-8"):
        index.scan(b"\xe5\x8f")


def test_chunked_scan_finds_the_same_matches() -> None:
    entries = [
        entry("kj", "口交"),
        entry("lk", "路口交通", Action.ALLOW),
        entry("ty", "台独"),
        entry("fk", "fuck"),
    ]
    whole = KeywordIndex.build(entries)
    chunked = KeywordIndex.build(entries, chunk_chars=50, overlap_chars=12)
    rng = random.Random(5)
    pieces = ["口交", "口 交", "路口交通", "台独", "臺獨", "fuck", "FUCK", "f.u.c.k", "天气", "晴", "，", " "]
    for _ in range(20):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(20, 120)))
        assert chunked.scan(text) == whole.scan(text)


def test_limits_and_bad_input() -> None:
    small = KeywordIndex.build([entry("kj", "口交")], max_input_bytes=1000)
    assert small.scan("口交" * 166)  # 996 bytes
    with pytest.raises(UsageError, match="exceeds the limit"):
        small.scan("口交" * 167)
    with pytest.raises(UsageError, match="surrogate"):
        small.scan("口\udc80交")
    default = KeywordIndex.build([entry("kj", "口交")])
    with pytest.raises(UsageError, match="exceeds the limit"):
        default.scan("a" * (10 * 1024 * 1024 + 1))


def test_build_errors() -> None:
    with pytest.raises(UsageError, match="duplicate"):
        KeywordIndex.build([entry("a", "口交"), entry("a", "台独")])
    with pytest.raises(UsageError, match="normalises to nothing"):
        KeywordIndex.build([entry("a", "***")])
    with pytest.raises(UsageError, match="doubled character"):
        KeywordIndex.build([entry("a", "妈妈", extra=frozenset({N.REPEAT}))])
    with pytest.raises(UsageError, match="exclude each other"):
        entry("a", "法轮功", extra=frozenset({N.PINYIN, N.INITIALS}))
    with pytest.raises(UsageError, match="empty"):
        entry("a", "  ")
    with pytest.raises(UsageError, match="overlap_chars"):
        KeywordIndex.build([entry("a", "x")], chunk_chars=10, overlap_chars=10)


def test_entries_accept_step_names() -> None:
    e = KeywordEntry("a", "法轮功", R.A1_1, Action.BLOCK, frozenset({"pinyin", "strip"}))  # type: ignore[arg-type]
    assert e.match == {N.PINYIN, N.STRIP}


def test_english_whole_word_is_derived() -> None:
    assert entry("a", "ass").english_whole_word
    assert entry("a", "ＡＳＳ").english_whole_word
    assert entry("a", "f-ck").english_whole_word
    assert not entry("a", "AV女优").english_whole_word
    assert not entry("a", "口交").english_whole_word
    assert not entry("a", "110").english_whole_word


def test_index_is_immutable(index: KeywordIndex) -> None:
    with pytest.raises(AttributeError):
        index._groups = ()
    with pytest.raises(AttributeError):
        index.anything = 1
    assert len(index) == 13
    assert DEFAULT_STEPS in index.normalization_sets
    assert len(index.normalization_sets) == 5


def test_mask() -> None:
    index = KeywordIndex.build([entry("kj", "口交", Action.MASK), entry("ty", "台独")])
    text = "口 交和台独"
    matches = index.scan(text)
    assert mask(text, matches) == "***和台独"
    assert mask(text, matches, "#", all_matches=True) == "###和##"
    with pytest.raises(UsageError):
        mask(text, matches, "**")
    with pytest.raises(UsageError, match="outside"):
        mask("短", matches)


# --- risk categories -----------------------------------------------------------------------------


def test_risk_codes_are_stable() -> None:
    codes = [c.value for c in RiskCategory]
    assert len(codes) == 31
    assert codes[0] == "A1.1" and codes[-1] == "A5.2"
    assert sum(map(is_a1, RiskCategory)) == 8
    assert sum(map(is_a2, RiskCategory)) == 9
    assert [c.value for c in RiskCategory if c.group == "A4"] == [f"A4.{k}" for k in range(1, 8)]
    assert all(c.description for c in RiskCategory)
    assert RiskCategory("A2.5").description == "discrimination by gender"


def test_library_minimums() -> None:
    minimums = LibraryMinimums()
    counts = {c: 200 for c in RiskCategory if is_a1(c)} | {c: 100 for c in RiskCategory if is_a2(c)}
    assert minimums.shortfalls(counts) == ["total: 2500 keywords, at least 10000"]
    counts[R.A3_1] = 7500
    assert minimums.shortfalls(counts) == []
    counts[R.A2_9] = 99
    counts[R.A3_1] += 1
    assert minimums.shortfalls(counts) == ["A2.9: 99 keywords, at least 100"]
    assert LibraryMinimums(total=100).shortfalls({R.A1_1: 1})[0] == "A1.1: 1 keywords, at least 200"
