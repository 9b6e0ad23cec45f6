"""Homophone groups for keyword matching: pinyin readings, and a small hand-curated table.

Two layers, both used only by entries that ask for ``Normalization.HOMOPHONE`` (or pinyin):

1. **Systematic homophones** are derived at build time from pypinyin's character readings: every
   character whose most common reading, without tones, is the same syllable belongs to one class
   (发, 法, 珐 all read ``fa``). Nothing of this is listed by hand: ``primary_readings()`` parses
   ``pypinyin.pinyin_dict`` once (``ü`` is written ``v``, as pypinyin's ``Style.NORMAL`` does).
2. **The table below** lists only what readings cannot know: near-homophones and internet spellings
   used to dodge filters (特么 for 他妈, 童鞋 for 同学, 菇凉 for 姑娘), where the syllables differ.
   Each ``HomophoneGroup`` moves its ``members`` into the class of its ``representative``.

How to extend the table: add a ``HomophoneGroup`` with a one-character ``representative`` (the
character the evasion stands for), the evading ``members`` as a string of single CJK characters, and
a ``note`` with an example of the evasion. A character may be a member of one group only, and never
a representative of another (``tests/review/test_normalize.py`` checks the table). A member leaves
its own syllable class: only list characters whose evasive use is common, because every entry that
asks for homophones will treat the member as the representative.

Characters with several readings belong to the class of their most common one; keyword entries add
the phrase-aware reading of their own characters as a second pattern (``normalize.term_forms``), so
重庆 (chóng qìng, whose 重 is mostly read zhòng) is still found when written 崇庆.
"""

from __future__ import annotations

import dataclasses
import functools
import unicodedata
from typing import Final

from synthguard._cache import cached_json

__all__ = [
    "GROUPS",
    "HomophoneGroup",
    "hand_members",
    "homophone_map",
    "primary_readings",
    "syllable_representatives",
]


@dataclasses.dataclass(frozen=True)
class HomophoneGroup:
    """Characters written in place of ``representative`` to dodge a filter."""

    representative: str
    members: str
    note: str


GROUPS: Final[tuple[HomophoneGroup, ...]] = (
    HomophoneGroup("他", "特", "特么 for 他妈 (te/ta)"),
    HomophoneGroup("妈", "么", "特么 for 他妈 (me/ma)"),
    HomophoneGroup("产", "惨", "共惨党 for 共产党 (can/chan)"),
    HomophoneGroup("学", "鞋", "童鞋 for 同学 (xie/xue)"),
    HomophoneGroup("娘", "凉", "菇凉 for 姑娘 (liang/niang)"),
    HomophoneGroup("怎", "肿", "肿么 for 怎么 (zhong/zen)"),
    HomophoneGroup("没", "木", "木有 for 没有 (mu/mei)"),
    HomophoneGroup("难", "蓝", "蓝瘦 for 难受 (lan/nan)"),
    HomophoneGroup("哭", "菇", "香菇 for 想哭 (gu/ku)"),
    HomophoneGroup("欢", "饭", "稀饭 for 喜欢 (fan/huan)"),
    HomophoneGroup("子", "纸", "妹纸 for 妹子 (zhi/zi)"),
    HomophoneGroup("知", "姿", "涨姿势 for 长知识 (zi/zhi)"),
)


def _toneless(reading: str) -> str:
    # "lǜ" -> "lv": the diaeresis first becomes "v" (pypinyin's Style.NORMAL spelling), then the tone
    # marks go with the other combining characters.
    decomposed = unicodedata.normalize("NFD", reading).replace("u\u0308", "v").replace("U\u0308", "v")
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch)).lower()


@functools.cache
def primary_readings() -> dict[int, str]:
    """Code point -> most common reading without tones, for every character pypinyin knows.

    Derived from pypinyin's table once per installed pypinyin version and kept in the disk cache
    (``synthguard._cache``): deriving takes about 0.5 s, reading the cached copy a few milliseconds.
    """
    from importlib.metadata import version

    name = f"pinyin-readings-{version('pypinyin')}-1"
    pairs = cached_json(name, _derive_readings, check=_valid_readings)
    return {int(code): syllable for code, syllable in pairs}


def _derive_readings() -> list[tuple[int, str]]:
    from pypinyin.pinyin_dict import pinyin_dict  # heavy (about 0.5 s): only when asked for

    readings: list[tuple[int, str]] = []
    for code, value in pinyin_dict.items():
        first = value.split(",", 1)[0]
        syllable = _toneless(first)
        if syllable.isascii() and syllable.isalpha():
            readings.append((code, syllable))
    return readings


def _valid_readings(value: object) -> bool:
    return (
        isinstance(value, list)
        and len(value) > 10_000
        and all(
            isinstance(pair, list | tuple)
            and len(pair) == 2
            and isinstance(pair[0], int)
            and isinstance(pair[1], str)
            and pair[1].isascii()
            and pair[1].isalpha()
            for pair in value
        )
    )


@functools.cache
def syllable_representatives() -> dict[str, int]:
    """Toneless syllable -> the code point that stands for its class.

    The representative of a hand-curated group when its reading is that syllable, else the first
    character of the syllable in the unified CJK block (a stable, ordinary character), else the first
    anywhere.
    """
    readings = primary_readings()
    chosen: dict[str, int] = {}
    for code in sorted(readings, key=lambda c: (not 0x4E00 <= c <= 0x9FFF, c)):
        chosen.setdefault(readings[code], code)
    for group in GROUPS:
        code = ord(group.representative)
        if code in readings:
            chosen[readings[code]] = code
    return chosen


@functools.cache
def homophone_map() -> dict[int, int]:
    """Code point -> code point of its class representative, for every character that changes."""
    readings = primary_readings()
    representatives = syllable_representatives()
    mapping: dict[int, int] = {}
    for code, syllable in readings.items():
        target = representatives[syllable]
        if target != code:
            mapping[code] = target
    for group in GROUPS:
        rep = ord(group.representative)
        target = mapping.get(rep, rep)
        for member in group.members:
            mapping[ord(member)] = target
    return mapping


@functools.cache
def hand_members() -> frozenset[int]:
    """Code points listed as members of a hand-curated group."""
    return frozenset(ord(member) for group in GROUPS for member in group.members)
