"""Programmatic obfuscation of keywords, the way users try to slip them past a filter.

Used by the quality tests (recall on an evasion set) and by ``bench/review_keywords.py``. Nothing here
reads the matcher's tables: traditional forms come from OpenCC's phrase-level ``s2t`` conversion,
readings from pypinyin's phrase-aware ``lazy_pinyin``, homophones from every character pypinyin
reads the same way, so the set measures the matcher instead of restating it.

>>> import random
>>> rng = random.Random(7)
>>> evade("法轮功", Evasion.SEPARATORS, rng) != "法轮功"
True
"""

from __future__ import annotations

import enum
import functools
import random
import unicodedata
from collections import defaultdict
from collections.abc import Callable, Iterable
from typing import cast

from synthguard.review.normalize import Normalization

__all__ = ["Evasion", "applicable", "evade", "evasion_set"]


class Evasion(enum.Enum):
    SEPARATORS = "separators"  # 法.轮*功, 法 轮 功, f-u-c-k
    INVISIBLE = "invisible"  # zero-width characters, soft hyphens, tags, combining strokes
    TRADITIONAL = "traditional"  # 臺獨 for 台独
    FULLWIDTH = "fullwidth"  # ｆｕｃｋ
    MIXED_CASE = "mixed-case"  # FuCk
    MATH_LETTERS = "math-letters"  # 𝐟𝐮𝐜𝐤 (NFKC)
    CIRCLED = "circled"  # ⑥④
    CHINESE_DIGITS = "chinese-digits"  # 六四 for 64
    FINANCIAL_DIGITS = "financial-digits"  # 陆肆
    FULLWIDTH_DIGITS = "fullwidth-digits"  # ６４
    REPEAT = "repeat"  # 毒毒品品
    PINYIN = "pinyin"  # falungong, Fa Lun Gong, 法lun功
    INITIALS = "initials"  # flg, FLG, 法lg
    HOMOPHONE = "homophone"  # 发论攻
    COMBINED = "combined"  # two or three of the above


_SEPARATORS = (
    " ",
    ".",
    "*",
    "-",
    "_",
    "|",
    "/",
    "·",
    "~",
    "#",
    "@",
    "+",
    "  ",
    "\t",
    "\n",
    "♥",
    "★",
    "💥",
    "…",
)
_INVISIBLE = ("\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u00ad", "\u180e", "\U000e0020", "\u034f")
_STROKE = "\u0336"  # combining long stroke overlay: s̶e̶x̶
_CIRCLED = "⓪①②③④⑤⑥⑦⑧⑨"
_CHINESE = "〇一二三四五六七八九"
_FINANCIAL = "零壹贰叁肆伍陆柒捌玖"
_SUBSTITUTIONS = frozenset(
    {
        Evasion.TRADITIONAL,
        Evasion.FULLWIDTH,
        Evasion.MIXED_CASE,
        Evasion.MATH_LETTERS,
        Evasion.CIRCLED,
        Evasion.CHINESE_DIGITS,
        Evasion.FINANCIAL_DIGITS,
        Evasion.FULLWIDTH_DIGITS,
        Evasion.HOMOPHONE,
    }
)


def _is_cjk(ch: str) -> bool:
    return "\u3400" <= ch <= "\u9fff" or "\U00020000" <= ch <= "\U0003ffff"


@functools.cache
def _s2t() -> object:
    import opencc

    return opencc.OpenCC("s2t")


def _traditional(term: str) -> str:
    return str(_s2t().convert(term))  # type: ignore[attr-defined]


def _readings(term: str) -> list[str]:
    from pypinyin import Style, lazy_pinyin

    one_by_one = cast("Callable[[str], str]", list)  # other characters one by one (a list is accepted)
    return [s.lower() for s in lazy_pinyin(term, style=Style.NORMAL, errors=one_by_one)]


@functools.cache
def _by_reading() -> dict[str, list[str]]:
    """Toneless syllable -> common characters (those of GB 2312, the ones people type) whose most
    common reading it is."""
    from pypinyin.pinyin_dict import pinyin_dict

    table: dict[str, list[str]] = defaultdict(list)
    for code, value in pinyin_dict.items():
        try:
            chr(code).encode("gb2312")
        except UnicodeEncodeError:
            continue
        if not 0x4E00 <= code <= 0x9FA5:
            continue
        first = value.split(",", 1)[0]
        decomposed = unicodedata.normalize("NFD", first).replace("u\u0308", "v")
        syllable = "".join(c for c in decomposed if not unicodedata.combining(c))
        table[syllable].append(chr(code))
    return dict(table)


def _digit_positions(term: str) -> list[int]:
    """Positions of the characters that stand for digits: ASCII digits, or Chinese digits in a run."""
    values = {**{str(d): d for d in range(10)}, **{c: d for d, c in enumerate(_CHINESE)}}
    values.update({c: d for d, c in enumerate(_FINANCIAL)})
    positions = []
    for k, ch in enumerate(term):
        if ch not in values:
            continue
        neighbour = (k > 0 and term[k - 1] in values) or (k + 1 < len(term) and term[k + 1] in values)
        if ch.isascii() or neighbour:
            positions.append(k)
    return positions


def _digit_value(ch: str) -> int:
    for table in ("0123456789", _CHINESE, _FINANCIAL):
        if ch in table:
            return table.index(ch)
    raise ValueError(ch)


def applicable(term: str, steps: frozenset[Normalization]) -> list[Evasion]:
    """The evasions that an entry with ``steps`` claims to see through, for ``term``."""
    kinds: list[Evasion] = []
    letters = any(c.isascii() and c.isalpha() for c in term)
    if Normalization.STRIP in steps and len(term) > 1:
        kinds += [Evasion.SEPARATORS, Evasion.INVISIBLE]
    if Normalization.T2S in steps and _traditional(term) != term:
        kinds.append(Evasion.TRADITIONAL)
    if (Normalization.NFKC in steps or Normalization.WIDTH in steps) and any(c.isascii() for c in term):
        kinds.append(Evasion.FULLWIDTH)
    if Normalization.CASE in steps and letters:
        kinds.append(Evasion.MIXED_CASE)
        if Normalization.NFKC in steps:
            kinds.append(Evasion.MATH_LETTERS)
    if Normalization.NUMERALS in steps and _digit_positions(term):
        kinds += [Evasion.CIRCLED, Evasion.FULLWIDTH_DIGITS]
        if len(_digit_positions(term)) > 1:  # a lone Chinese digit is not read as a numeral
            kinds += [Evasion.CHINESE_DIGITS, Evasion.FINANCIAL_DIGITS]
    if Normalization.REPEAT in steps:
        kinds.append(Evasion.REPEAT)
    if Normalization.PINYIN in steps and any(_is_cjk(c) for c in term):
        kinds.append(Evasion.PINYIN)
    if Normalization.INITIALS in steps and any(_is_cjk(c) for c in term):
        kinds.append(Evasion.INITIALS)
    if Normalization.HOMOPHONE in steps and any(_is_cjk(c) for c in term):
        kinds.append(Evasion.HOMOPHONE)
    if len(kinds) >= 2:
        kinds.append(Evasion.COMBINED)
    return kinds


def evade(term: str, kind: Evasion, rng: random.Random, steps: frozenset[Normalization] | None = None) -> str:
    """``term`` obfuscated one way (``COMBINED`` needs the entry's ``steps``)."""
    if kind is Evasion.SEPARATORS:
        return _interleave(term, rng, _SEPARATORS)
    if kind is Evasion.INVISIBLE:
        if rng.random() < 0.25 and term.isascii():
            return "".join(c + _STROKE for c in term)
        return _interleave(term, rng, _INVISIBLE)
    if kind is Evasion.TRADITIONAL:
        return _traditional(term)
    if kind is Evasion.FULLWIDTH:
        return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in term)
    if kind is Evasion.MIXED_CASE:
        flipped = "".join(c.upper() if rng.random() < 0.5 else c.lower() for c in term)
        return flipped if flipped != term else term.upper()
    if kind is Evasion.MATH_LETTERS:
        return "".join(_math_letter(c) for c in term)
    if kind in (Evasion.CIRCLED, Evasion.CHINESE_DIGITS, Evasion.FINANCIAL_DIGITS, Evasion.FULLWIDTH_DIGITS):
        table = {
            Evasion.CIRCLED: _CIRCLED,
            Evasion.CHINESE_DIGITS: _CHINESE,
            Evasion.FINANCIAL_DIGITS: _FINANCIAL,
            Evasion.FULLWIDTH_DIGITS: "０１２３４５６７８９",
        }[kind]
        chars = list(term)
        for k in _digit_positions(term):
            chars[k] = table[_digit_value(chars[k])]
        return "".join(chars)
    if kind is Evasion.REPEAT:
        return "".join(c * (rng.randint(2, 4) if rng.random() < 0.6 else 1) for c in term)
    if kind is Evasion.PINYIN:
        return _spell(term, rng, initials=False)
    if kind is Evasion.INITIALS:
        return _spell(term, rng, initials=True)
    if kind is Evasion.HOMOPHONE:
        return _homophone(term, rng)
    if kind is Evasion.COMBINED:
        if steps is None:
            raise ValueError("COMBINED needs the entry's steps")
        return _combined(term, rng, steps)
    raise ValueError(kind)


def _interleave(term: str, rng: random.Random, fillers: Iterable[str]) -> str:
    choices = tuple(fillers)
    out = [term[0]]
    for ch in term[1:]:
        out.append(rng.choice(choices) if rng.random() < 0.85 else "")
        out.append(ch)
    text = "".join(out)
    return text if text != term else term[0] + choices[0] + term[1:]


def _math_letter(ch: str) -> str:
    if "a" <= ch <= "z":
        return chr(0x1D41A + ord(ch) - ord("a"))  # mathematical bold small
    if "A" <= ch <= "Z":
        return chr(0x1D400 + ord(ch) - ord("A"))
    return ch


def _spell(term: str, rng: random.Random, *, initials: bool) -> str:
    readings = _readings(term)
    if len(readings) != len(term):
        readings = list(term)
    pieces = []
    cjk_positions = [k for k, c in enumerate(term) if _is_cjk(c)]
    keep = set(rng.sample(cjk_positions, k=1)) if len(cjk_positions) > 2 and rng.random() < 0.3 else set()
    for k, (ch, reading) in enumerate(zip(term, readings, strict=True)):
        if not _is_cjk(ch) or k in keep:
            pieces.append(ch)
            continue
        piece = reading[:1] if initials else reading
        style = rng.random()
        if style < 0.2:
            piece = piece.upper()
        elif style < 0.4:
            piece = piece.capitalize()
        pieces.append(piece)
    separator = " " if (not initials and rng.random() < 0.4) else ""
    return separator.join(pieces)


def _homophone(term: str, rng: random.Random) -> str:
    readings = _readings(term)
    table = _by_reading()
    chars = list(term)
    positions = [k for k, c in enumerate(term) if _is_cjk(c) and len(readings) == len(term)]
    rng.shuffle(positions)
    changed = 0
    for k in positions:
        options = [c for c in table.get(readings[k], []) if c != term[k]]
        if options:
            chars[k] = rng.choice(options)
            changed += 1
            if changed >= max(1, len(positions) // 2) and rng.random() < 0.5:
                break
    return "".join(chars)


def _combined(term: str, rng: random.Random, steps: frozenset[Normalization]) -> str:
    kinds = [k for k in applicable(term, steps) if k is not Evasion.COMBINED]
    chosen = rng.sample(kinds, k=min(len(kinds), rng.randint(2, 3)))
    # Spellings replace the characters, substitutions change them one for one, insertions go
    # between them, repeats last: the order a person would apply them in.
    spellings = [k for k in chosen if k in (Evasion.PINYIN, Evasion.INITIALS)]
    text = term
    if spellings:
        text = evade(text, spellings[0], rng)
    else:
        for kind in (k for k in chosen if k in _SUBSTITUTIONS):
            if kind is Evasion.TRADITIONAL and text != term:
                continue  # OpenCC on an already altered text may change another character
            text = evade(text, kind, rng)
    if Evasion.REPEAT in chosen:
        text = evade(text, Evasion.REPEAT, rng)
    for kind in (Evasion.SEPARATORS, Evasion.INVISIBLE):
        if kind in chosen and len(text) > 1:
            text = evade(text, kind, rng)
    return text


def evasion_set(
    entries: Iterable[tuple[str, str, frozenset[Normalization]]], per_entry: int, seed: int = 0
) -> list[tuple[str, str, Evasion]]:
    """``(entry id, evasive text, kind)``: ``per_entry`` evasions of each ``(id, term, steps)``,
    cycling through the kinds that apply to it, each different from the term."""
    rng = random.Random(seed)
    out: list[tuple[str, str, Evasion]] = []
    for entry_id, term, steps in entries:
        kinds = applicable(term, steps)
        if not kinds:
            continue
        made = 0
        attempts = 0
        while made < per_entry and attempts < per_entry * 10:
            kind = kinds[attempts % len(kinds)]
            attempts += 1
            text = evade(term, kind, rng, steps)
            if text != term:
                out.append((entry_id, text, kind))
                made += 1
    return out
