"""The contract every metadata labeler keeps; a container's test subclasses it.

A subclass sets ``labeler`` and implements ``make_samples`` (files of its container, made in the test
or small and licensed, carrying other metadata) and ``other_metadata`` (what an independent reader
sees besides the label, which must survive). It inherits: round trip, label twice → one label,
other metadata intact, payload bytes identical, input untouched, relabel keeps producer members,
atomic output on bad input, and a fuzz test of the reader and writer.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import re
from pathlib import Path
from typing import Any, ClassVar

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from synthguard.aigc import AigcLabel, ProduceID
from synthguard.config import Settings
from synthguard.errors import InvalidLabelError, MediaError, SynthguardError
from synthguard.labels.base import InPlaceWriter, MetadataLabeler
from synthguard.labels.detect import detect_file
from synthguard.labels.pipeline import label_file, relabel_file

PRODUCER = "001191110102MACQD9K64010000"
PROPAGATOR = "001191110102MACQD9K64020001"


def make_label(**changes: str) -> AigcLabel:
    base = AigcLabel(Label="1", ContentProducer=PRODUCER, ProduceID=ProduceID.new())
    return base.replace(**changes) if changes else base


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


class MetadataLabelerContract:
    """Subclass and set ``labeler``; implement ``make_samples`` and ``other_metadata``."""

    labeler: ClassVar[MetadataLabeler]

    # -- what a subclass provides -----------------------------------------------------------

    def make_samples(self, folder: Path) -> list[Path]:
        """Files of this container (at least one carrying other metadata)."""
        raise NotImplementedError

    def other_metadata(self, path: Path) -> Any:
        """What an independent reader sees besides the label (compared before and after)."""
        raise NotImplementedError

    def count_labels(self, path: Path) -> int:
        """How many labels the file holds; by default, occurrences of the ProduceID member."""
        return len(re.findall(rb'"ProduceID"\s*:', path.read_bytes()))

    # -- helpers ----------------------------------------------------------------------------

    @pytest.fixture
    def samples(self, tmp_path: Path) -> list[Path]:
        folder = tmp_path / "samples"
        folder.mkdir()
        made = self.make_samples(folder)
        assert made, "make_samples returned no files"
        return made

    def write(self, src: Path, dst: Path, label: AigcLabel) -> None:
        with src.open("rb") as fin, dst.open("w+b") as fout:
            self.labeler.write(fin, fout, label.to_json())

    def read(self, path: Path) -> AigcLabel | None:
        with path.open("rb") as fh:
            raw = self.labeler.read(fh)
        return None if raw is None else AigcLabel.parse(raw)

    def payload(self, path: Path) -> bytes:
        with path.open("rb") as fh:
            return b"".join(self.labeler.payload(fh))

    # -- the contract -----------------------------------------------------------------------

    def test_unlabeled_reads_none(self, samples: list[Path]) -> None:
        for src in samples:
            assert self.read(src) is None, src

    def test_round_trip(self, samples: list[Path], tmp_path: Path) -> None:
        for src in samples:
            label = make_label()
            dst = tmp_path / f"out-{src.name}"
            self.write(src, dst, label)
            assert self.read(dst) == label
            assert self.count_labels(dst) == 1

    def test_label_twice_is_one_label(self, samples: list[Path], tmp_path: Path) -> None:
        for src in samples:
            first, second = make_label(), make_label(ProduceID="00000000000000AB")
            once, twice = tmp_path / f"1-{src.name}", tmp_path / f"2-{src.name}"
            self.write(src, once, first)
            self.write(once, twice, second)
            assert self.read(twice) == second
            assert self.count_labels(twice) == 1
            # updated in place: the file does not grow when the label keeps its length
            assert abs(twice.stat().st_size - once.stat().st_size) <= 64

    def test_other_metadata_intact(self, samples: list[Path], tmp_path: Path) -> None:
        for src in samples:
            before = self.other_metadata(src)
            dst = tmp_path / f"out-{src.name}"
            self.write(src, dst, make_label())
            assert self.other_metadata(dst) == before, src

    def test_payload_identical(self, samples: list[Path], tmp_path: Path) -> None:
        for src in samples:
            dst = tmp_path / f"out-{src.name}"
            self.write(src, dst, make_label())
            original = self.payload(src)
            assert original, "the payload of a sample should not be empty"
            assert self.payload(dst) == original

    def test_input_untouched(self, samples: list[Path], tmp_path: Path) -> None:
        for src in samples:
            digest = sha256(src)
            self.write(src, tmp_path / f"out-{src.name}", make_label())
            assert sha256(src) == digest

    def test_pipeline_and_relabel(self, samples: list[Path], tmp_path: Path) -> None:
        cfg = Settings(provider_code=PRODUCER, propagator_code=PROPAGATOR)
        for src in samples:
            labeled = tmp_path / f"l-{src.name}"
            result = label_file(src, labeled, settings=cfg)
            assert result.label is not None
            detection = detect_file(labeled, settings=cfg)
            assert detection.metadata.label == result.label
            assert detection.verdict == "1"
            relabeled = tmp_path / f"r-{src.name}"
            again = relabel_file(labeled, relabeled, settings=cfg)
            assert again.label is not None
            got = self.read(relabeled)
            assert got is not None
            assert got.producer_members == result.label.producer_members
            assert got.ContentPropagator == PROPAGATOR
            assert got.PropagateID == again.label.PropagateID
            assert self.count_labels(relabeled) == 1

    def test_signed_label_verifies_and_binds_to_content(
        self, samples: list[Path], tmp_path: Path, ed25519_settings: Settings
    ) -> None:
        src = samples[0]
        labeled = tmp_path / f"s-{src.name}"
        label_file(src, labeled, settings=ed25519_settings)
        detection = detect_file(labeled, settings=ed25519_settings)
        assert detection.metadata.signature.value == "valid"
        # an edited label no longer verifies
        assert detection.metadata.label is not None
        edited = detection.metadata.label.replace(ProduceID="0000000000000001")
        tampered = tmp_path / f"t-{src.name}"
        self.write(labeled, tampered, edited)
        assert detect_file(tampered, settings=ed25519_settings).metadata.signature.value == ("invalid")

    def test_in_place(self, samples: list[Path], tmp_path: Path) -> None:
        if not isinstance(self.labeler, InPlaceWriter):
            # a labeler without the capability does not pretend to have it
            assert not hasattr(self.labeler, "write_in_place")
            return
        for src in samples:
            target = tmp_path / f"ip-{src.name}"
            target.write_bytes(src.read_bytes())
            before = self.payload(target)
            label = make_label()
            with target.open("r+b") as fh:
                done = self.labeler.write_in_place(fh, label.to_json())
            if done:
                assert self.read(target) == label
                assert self.payload(target) == before
                assert self.count_labels(target) == 1
            else:
                assert target.read_bytes() == src.read_bytes()

    def test_truncated_input_is_a_typed_error_or_a_clean_copy(
        self, samples: list[Path], tmp_path: Path
    ) -> None:
        src = samples[0]
        data = src.read_bytes()
        cfg = Settings(provider_code=PRODUCER)
        for cut in sorted({0, 1, 7, 16, 64, len(data) // 3, len(data) // 2, len(data) - 1}):
            if cut >= len(data):
                continue
            broken = tmp_path / f"cut{cut}-{src.name}"
            broken.write_bytes(data[:cut])
            out = tmp_path / f"cut{cut}-out-{src.name}"
            try:
                label_file(broken, out, settings=cfg)
            except SynthguardError as exc:
                assert isinstance(exc, MediaError | InvalidLabelError), exc
                assert not out.exists()
                leftovers = [p for p in tmp_path.iterdir() if p.name.endswith(".part")]
                assert not leftovers
            else:
                assert out.exists()
            assert broken.read_bytes() == data[:cut]

    @settings(
        max_examples=60,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.differing_executors],
    )
    @given(data=st.data())
    def test_fuzz_reader_and_writer(self, data: st.DataObject, samples: list[Path]) -> None:
        original = samples[0].read_bytes()
        mutated = bytearray(original)
        edits = data.draw(
            st.lists(
                st.tuples(st.integers(0, max(len(original) - 1, 0)), st.integers(0, 255)),
                max_size=8,
            )
        )
        for position, value in edits:
            if position < len(mutated):
                mutated[position] = value
        cut = data.draw(st.integers(0, len(mutated)))
        blob = bytes(mutated[:cut])
        with contextlib.suppress(MediaError):
            self.labeler.read(io.BytesIO(blob))
        with contextlib.suppress(MediaError):
            self.labeler.write(io.BytesIO(blob), io.BytesIO(), make_label().to_json())


def assert_no_partial_files(folder: Path) -> None:
    leftovers = [p for p in folder.rglob("*") if p.name.endswith(".part")]
    assert not leftovers, leftovers


__all__ = ["PRODUCER", "PROPAGATOR", "MetadataLabelerContract", "make_label", "sha256"]
