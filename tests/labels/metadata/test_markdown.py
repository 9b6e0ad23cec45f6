"""Markdown (YAML front matter key AIGC): the contract, an independent front matter reader, the edits
kept textual, hostile YAML."""

from __future__ import annotations

import functools
import io
import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from synthguard.aigc import AigcLabel
from synthguard.errors import CorruptMediaError, MediaError
from synthguard.labels.metadata.markdown import MarkdownLabeler
from tests.contracts.metadata_contract import MetadataLabelerContract, make_label
from tests.media_tools import CountingReader, label_bytes, write_samples

RICH = """---
title: "A post"  # the title
date: 2025-09-01
tags:
  - ai
  - test
# a comment line
nested:
  key: value
---
# Heading

Body text, with a thematic break below.

---

The end.
"""


def split(data: bytes) -> tuple[str, bytes]:
    """An independent front matter reader: (YAML text, body)."""
    text = data.removeprefix(b"\xef\xbb\xbf")
    match = re.match(rb"---\r?\n(.*?)^(?:---|\.\.\.)[ \t]*(?:\r?\n|$)", text, re.DOTALL | re.MULTILINE)
    if match is None:
        return "", text
    return match.group(1).decode(), text[match.end() :]


def make_markdown(folder: Path) -> list[Path]:
    files = {
        "rich.md": RICH.encode(),
        "plain.md": b"# Just a title\n\nNo front matter here.\n",
        "bom-crlf.md": b"\xef\xbb\xbf---\r\ntitle: Windows\r\n...\r\nBody\r\n",
        "thematic-break.md": b"---\nNot front matter: it never closes.\n",
        "empty-front-matter.md": b"---\n---\nBody only.\n",
    }
    return write_samples(folder, files)


class TestMarkdownContract(MetadataLabelerContract):
    labeler = MarkdownLabeler()

    def make_samples(self, folder: Path) -> list[Path]:
        return make_markdown(folder)

    def other_metadata(self, path: Path) -> Any:
        data = path.read_bytes()
        front, body = split(data)
        parsed = yaml.safe_load(front) or {}
        parsed.pop("AIGC", None)
        comments = [line for line in front.splitlines() if "#" in line]
        return {"front": parsed, "comments": comments, "body": body, "bom": data[:3] == b"\xef\xbb\xbf"}

    def count_labels(self, path: Path) -> int:
        # the members are YAML keys, written without quotes
        return len(re.findall(rb"(?m)^\s+ProduceID\s*:", path.read_bytes()))


labeled = functools.partial(label_bytes, MarkdownLabeler())


def test_independent_reader_sees_seven_quoted_members_in_order() -> None:
    label = make_label()
    out = labeled(RICH.encode(), label.to_json())
    front, body = split(out)
    assert body == split(RICH.encode())[1]
    value = yaml.safe_load(front)["AIGC"]
    assert list(value) == list(label.to_dict())
    assert AigcLabel.from_mapping(value) == label
    assert re.search(r'(?m)^  ProduceID: "[0-9A-F]+"$', front)
    # everything that was there is still there, byte for byte
    original = split(RICH.encode())[0]
    assert front.startswith(original)


def test_relabel_replaces_the_block_in_place() -> None:
    first, second = make_label(), make_label(ContentPropagator="001191110102MACQD9K64020001")
    once = labeled(RICH.encode(), first.to_json())
    twice = labeled(once, second.to_json())
    assert twice.count(b"AIGC:") == 1
    assert MarkdownLabeler().read(io.BytesIO(twice)) == second.to_json()
    assert split(twice)[0].startswith(split(RICH.encode())[0])


def test_json_string_form_and_duplicates_become_one_block() -> None:
    label = make_label()
    data = f"---\nAIGC: '{label.to_json()}'\ntitle: x\nAIGC: 'older'\n---\nbody\n".encode()
    # YAML keeps the last duplicate; the writer folds both into one block where the first was
    assert MarkdownLabeler().read(io.BytesIO(data)) == "older"
    out = labeled(data, label.to_json())
    front, _ = split(out)
    assert front.count("AIGC") == 1
    assert front.index("AIGC") < front.index("title")
    string_form = f"---\nAIGC: '{label.to_json()}'\n---\n".encode()
    assert MarkdownLabeler().read(io.BytesIO(string_form)) == label.to_json()


def test_bom_stays_first_and_crlf_is_used() -> None:
    out = labeled(b"\xef\xbb\xbfHello\r\n", make_label().to_json())
    assert out.startswith(b'\xef\xbb\xbf---\r\nAIGC:\r\n  Label: "1"\r\n')
    assert out.endswith(b"---\r\nHello\r\n")


@pytest.mark.parametrize(
    "data",
    [
        b"---\ntitle: [unclosed\n---\nbody\n",  # not YAML
        b"---\n- a list\n- not a mapping\n---\nbody\n",  # no key can be added
        b"---\ntitle: \xff\xfe\n---\n",  # not UTF-8
        b"---\nx: !!python/object/apply:os.system ['true']\n---\n",  # unsafe tag
        b"---\n" + b"[" * 5000 + b"\n---\n",  # deep nesting
    ],
)
def test_hostile_front_matter_is_refused_on_write(data: bytes) -> None:
    with pytest.raises(MediaError):
        labeled(data, make_label().to_json())


def test_alias_bomb_and_odd_values_are_typed_errors() -> None:
    bomb = b"---\na: &a [x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a]\n"
    bomb += b"c: &c [*b, *b, *b, *b, *b, *b, *b, *b]\nAIGC: {Label: *c}\n---\n"
    with pytest.raises(CorruptMediaError):
        MarkdownLabeler().read(io.BytesIO(bomb))
    listed = b"---\nAIGC: [1, 2]\n---\n"
    with pytest.raises(CorruptMediaError):
        MarkdownLabeler().read(io.BytesIO(listed))


def test_oversized_front_matter_is_body() -> None:
    data = b"---\n" + b"x: 1\n" * 300_000 + b"---\nbody\n"
    assert MarkdownLabeler().read(io.BytesIO(data)) is None
    out = labeled(data, make_label().to_json())
    assert out.endswith(data)


def test_non_object_label_text_is_kept_as_a_string() -> None:
    out = labeled(b"body\n", json.dumps(["not", "an", "object"]))
    assert MarkdownLabeler().read(io.BytesIO(out)) == '["not", "an", "object"]'


def test_read_stops_after_the_front_matter_limit() -> None:
    data = labeled(b"# Title\n" + b"text line\n" * 500_000, make_label().to_json())
    stream = CountingReader(data)
    assert MarkdownLabeler().read(stream) is not None
    assert stream.count <= 1024 * 1024 + 16
