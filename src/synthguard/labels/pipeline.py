"""Apply labels to a file: build the label, sign it, write atomically, read it back.

Kinds are applied in ``LabelKind`` order: the explicit (visible or audible) label first, then the
watermark, then the metadata label last, so that no step strips another's work; the metadata label's
signature binds the content as the earlier steps left it. The watermark carries the label's
``ProduceID``.

Which kinds: ``--kinds`` (``kinds=``) names them, and each named kind must be possible for the file
(else ``UsageError``: a text label cannot be drawn into a PDF, a watermark needs ``watermark_key``).
Without it, the policy ``default_kinds`` applies (explicit label, watermark and metadata, as the
Labeling Measures Art. 4-5 ask), and a kind the file's format or the configuration cannot take is
skipped, with a note in the result.

Every write goes to a temporary file beside the output and is renamed over it only after the label
reads back exactly; on any error the input is untouched and no output is left behind.
There is deliberately no function here, or anywhere in synthguard, that removes a label
(Provisions Art. 18, Measures Art. 10).
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import BinaryIO, Final

from synthguard._io import atomic_output
from synthguard.aigc import AigcLabel, LabelValue, ProduceID, ProviderCode
from synthguard.config import Settings, load_settings
from synthguard.errors import (
    InvalidLabelError,
    LabelError,
    MediaError,
    UnsupportedFormatError,
    UsageError,
    WriteVerificationError,
)
from synthguard.labels.base import InPlaceWriter, LabelKind, MetadataLabeler
from synthguard.labels.registry import metadata_labeler
from synthguard.labels.security import Signer, Slot, load_signer, payload_digest
from synthguard.media import Container, identify

__all__ = ["LabelResult", "applicable_kinds", "check_producer", "label_file", "parse_kinds", "relabel_file"]


@dataclasses.dataclass(frozen=True, slots=True)
class LabelResult:
    """What a label or relabel call did."""

    path: str
    output: str | None
    container: Container
    label: AigcLabel | None
    kinds: tuple[LabelKind, ...]
    in_place: bool = False
    #: The label the file carried before (relabel), if any.
    previous: AigcLabel | None = None
    #: Why nothing was written, when nothing was; or which default kinds were skipped, and why.
    note: str = ""
    #: What the explicit label step did (placements, measured glyph height), when it ran.
    visible: dict[str, object] | None = None

    def to_dict(self) -> dict[str, object]:
        return {
            "path": self.path,
            "output": self.output,
            "container": self.container.value,
            "modality": self.container.modality.value,
            "kinds": [k.value for k in self.kinds],
            "label": self.label.to_dict() if self.label else None,
            "previous": self.previous.to_dict() if self.previous else None,
            "in_place": self.in_place,
            "written": self.output is not None,
            "note": self.note,
            "visible": self.visible,
        }


def parse_kinds(text: str | Iterable[str] | None, settings: Settings) -> tuple[LabelKind, ...]:
    """``"visible,metadata"`` → kinds in pipeline order; unknown names are a ``UsageError``."""
    names = (
        settings.default_kinds
        if text is None
        else ([p.strip() for p in text.split(",")] if isinstance(text, str) else list(text))
    )
    kinds = set()
    for name in names:
        if not name:
            continue
        try:
            kinds.add(LabelKind(name))
        except ValueError:
            allowed = ", ".join(k.value for k in LabelKind)
            raise UsageError(f"unknown label kind {name!r} (choose from {allowed})") from None
    if not kinds:
        raise UsageError("no label kind chosen")
    return tuple(k for k in LabelKind if k in kinds)


#: Containers an explicit label can be put into (``visible.apply``).
_NO_VISIBLE: Final = frozenset(
    {Container.HEIF, Container.AVIF, Container.DOCX, Container.XLSX, Container.PPTX, Container.PDF}
)


def _why_not(kind: LabelKind, container: Container, settings: Settings) -> str | None:
    """Why ``kind`` cannot be applied to a file of ``container`` here, or None when it can."""
    if kind is LabelKind.VISIBLE and container in _NO_VISIBLE:
        return f"no explicit label is drawn into {container.value} files here"
    if kind is LabelKind.WATERMARK:
        from synthguard.watermark.files import supports

        if not supports(container):
            return f"{container.value} files carry no watermark here"
        if not settings.watermark_key:
            return "no watermark_key is configured"
    return None


def applicable_kinds(
    kinds: tuple[LabelKind, ...], container: Container, settings: Settings, *, explicit: bool
) -> tuple[tuple[LabelKind, ...], str]:
    """``kinds`` that can be applied to ``container``, and a note on those skipped. A kind asked for
    ``explicit``-ly that cannot be applied is a ``UsageError``."""
    chosen: list[LabelKind] = []
    skipped: list[str] = []
    for kind in kinds:
        why = _why_not(kind, container, settings)
        if why is None:
            chosen.append(kind)
        elif explicit:
            raise UsageError(f"cannot apply the {kind.value} label: {why}")
        else:
            skipped.append(f"{kind.value} skipped: {why}")
    return tuple(chosen), "; ".join(skipped)


def check_producer(code: str, role: str = "producer") -> str:
    """A ContentProducer/ContentPropagator value: required; checked per TC260-PG-20252A when it has
    the form of a provider code (27 characters starting 00)."""
    if not code:
        variable = "SYNTHGUARD_PROVIDER_CODE" if role == "producer" else "SYNTHGUARD_PROPAGATOR_CODE"
        raise UsageError(f"no {role} code: pass --{role} CODE or set {variable}")
    if len(code) == ProviderCode.LENGTH and code.startswith("00") and code.isalnum():
        ProviderCode.parse(code)  # looks like a TC260 provider code: it must be a valid one
    return code


def _open_input(path: Path) -> BinaryIO:
    try:
        return path.open("rb")
    except FileNotFoundError:
        raise MediaError("no such file", path=path) from None
    except IsADirectoryError:
        raise MediaError("is a directory", path=path) from None
    except OSError as exc:
        raise MediaError(f"cannot open: {exc.strerror}", path=path) from None


def _existing(labeler: MetadataLabeler, src: BinaryIO) -> tuple[AigcLabel | None, str | None]:
    raw = labeler.read(src)
    if raw is None:
        return None, None
    try:
        return AigcLabel.parse(raw), raw
    except InvalidLabelError:
        return None, raw


def _sign(
    signer: Signer | None,
    label: AigcLabel,
    slot: Slot,
    container: Container,
    labeler: MetadataLabeler,
    src: BinaryIO,
) -> AigcLabel:
    if signer is None:
        return label
    digest = payload_digest(labeler.payload(src), signer.digest_algorithm)
    value = signer.sign(label, slot, container.value, digest)
    field = "ReservedCode1" if slot is Slot.GENERATOR else "ReservedCode2"
    return label.replace(**{field: value})


def _write(
    labeler: MetadataLabeler,
    src: BinaryIO,
    src_path: Path,
    dst: Path | None,
    label: AigcLabel,
    in_place: bool,
) -> tuple[str, bool]:
    label_json = label.validate_for_writing().to_json()
    if in_place and isinstance(labeler, InPlaceWriter):
        src.close()
        with src_path.open("r+b") as f:
            if labeler.write_in_place(f, label_json):
                f.flush()
                _verify(labeler, f, label, src_path)
                return os.fspath(src_path), True
    target = src_path if dst is None else dst
    if src.closed:
        src = src_path.open("rb")
    with src, atomic_output(target) as out:
        labeler.write(src, out, label_json)
        out.flush()
        _verify(labeler, out, label, target)
    return os.fspath(target), False


def _verify(labeler: MetadataLabeler, f: BinaryIO, label: AigcLabel, path: Path) -> None:
    f.seek(0)
    raw = labeler.read(f)
    if raw is None or AigcLabel.parse(raw) != label:
        raise WriteVerificationError("the label did not read back as written", path=path)


def label_file(
    src: str | os.PathLike[str],
    dst: str | os.PathLike[str] | None = None,
    *,
    producer: str | None = None,
    produce_id: str | None = None,
    kinds: str | Iterable[str] | None = None,
    in_place: bool = False,
    settings: Settings | None = None,
    progress: Callable[[int, int | None], None] | None = None,
) -> LabelResult:
    """Label ``src`` as AI-generated (Label "1") and write the result to ``dst``.

    ``progress(done, expected)`` is called as the frames of a video get their explicit label.

    ``dst=None`` requires ``in_place=True``: the file is edited where the container allows it
    without a rewrite, else rewritten atomically. A file already labeled by the same producer has
    its label updated in place; one labeled by another producer is refused (a generator does not
    overwrite another's label; platforms use ``relabel_file``).

    >>> label_file("photo.jpg", "labeled.jpg", producer="001191110102MACQD9K64010000")  # doctest: +SKIP
    """
    settings = settings or load_settings()
    src_path = Path(src)
    if dst is None and not in_place:
        raise UsageError("give an output path, or ask for --in-place")
    requested = parse_kinds(kinds, settings)
    code = check_producer(producer or settings.provider_code)
    if produce_id is not None:
        ProduceID.to_int(produce_id)  # 16 upper-case hex digits: the watermark carries exactly these
    produce_id = produce_id or ProduceID.new()
    signer = load_signer(settings)
    handle = _open_input(src_path)
    visible: dict[str, object] | None = None
    try:
        container = identify(handle).container
        chosen, note = applicable_kinds(requested, container, settings, explicit=kinds is not None)
        if LabelKind.METADATA not in chosen:
            raise UsageError(
                "the metadata label is always written (Measures Art. 5): add metadata to --kinds"
            )
        labeler = metadata_labeler(container)
        previous, _ = _existing(labeler, handle)
        if previous is not None and previous.ContentProducer not in ("", code):
            raise LabelError(
                f"{src_path}: already labeled by producer {previous.ContentProducer}; a generator "
                "does not overwrite another producer's label (a platform uses relabel)"
            )
        label = AigcLabel(
            Label=LabelValue.AI_GENERATED, ContentProducer=code, ProduceID=produce_id
        ).validate_for_writing()
        target = None if dst is None else Path(dst)
        if LabelKind.VISIBLE in chosen or LabelKind.WATERMARK in chosen:
            handle.close()
            with tempfile.TemporaryDirectory(prefix=".synthguard-", dir=(target or src_path).parent) as work:
                staged, visible, skipped = _content_labels(
                    src_path, Path(work), chosen, produce_id, settings, kinds is not None, progress
                )
                if skipped:
                    chosen = tuple(k for k in chosen if k.value not in skipped)
                    note = "; ".join(filter(None, [note, *skipped.values()]))
                with staged.open("rb") as stage:
                    label = _sign(signer, label, Slot.GENERATOR, container, labeler, stage)
                    output, did_in_place = _write(labeler, stage, staged, target or src_path, label, False)
        else:
            label = _sign(signer, label, Slot.GENERATOR, container, labeler, handle)
            output, did_in_place = _write(labeler, handle, src_path, target, label, in_place)
    except MediaError as exc:
        raise exc.with_path(src_path) from None
    finally:
        handle.close()
    return LabelResult(
        os.fspath(src_path),
        output,
        container,
        label,
        chosen,
        in_place=did_in_place,
        previous=previous,
        note=note,
        visible=visible,
    )


def _content_labels(
    src: Path,
    work: Path,
    kinds: tuple[LabelKind, ...],
    produce_id: str,
    settings: Settings,
    explicit: bool,
    progress: Callable[[int, int | None], None] | None,
) -> tuple[Path, dict[str, object] | None, dict[str, str]]:
    """Apply the explicit label and then the watermark (those of ``kinds``) to copies of ``src`` in
    ``work``: the last copy, what the explicit label step reported, and the kinds skipped (with why)
    because this file cannot take them (an image too small to carry a watermark). A kind asked for
    ``explicit``-ly is never skipped: its error is raised."""
    staged = src
    visible: dict[str, object] | None = None
    skipped: dict[str, str] = {}
    if LabelKind.VISIBLE in kinds:
        from synthguard.visible.apply import apply_visible_label

        out = work / f"visible{src.suffix}"
        try:
            visible = apply_visible_label(staged, out, settings, progress).to_dict()
            staged = out
        except UnsupportedFormatError as exc:
            if explicit:
                raise
            skipped[LabelKind.VISIBLE.value] = f"visible skipped: {exc}"
    if LabelKind.WATERMARK in kinds:
        from synthguard.watermark.files import embed_file

        out = work / f"watermark{src.suffix}"
        try:
            embed_file(staged, out, produce_id, settings)
            staged = out
        except (UnsupportedFormatError, UsageError) as exc:  # e.g. audio too short to carry the mark
            if explicit:
                raise
            skipped[LabelKind.WATERMARK.value] = f"watermark skipped: {exc}"
    return staged, visible, skipped


def relabel_file(
    src: str | os.PathLike[str],
    dst: str | os.PathLike[str] | None = None,
    *,
    propagator: str | None = None,
    propagate_id: str | None = None,
    declared_ai: bool = False,
    traces_found: bool = False,
    in_place: bool = False,
    settings: Settings | None = None,
) -> LabelResult:
    """The platform's side (Measures Art. 6): keep the producer's members, fill the propagator's.

    With a label: ``Label``, ``ContentProducer``, ``ProduceID`` and ``ReservedCode1`` are kept;
    ``ContentPropagator``, ``PropagateID`` and (when a key is configured) ``ReservedCode2`` are set.
    Without one: ``Label`` "2" when the uploader declared AI content, "3" when traces were found (an
    explicit label or a watermark), and nothing is written otherwise (``output`` is ``None``).
    """
    settings = settings or load_settings()
    src_path = Path(src)
    if dst is None and not in_place:
        raise UsageError("give an output path, or ask for --in-place")
    code = check_producer(propagator or settings.propagator_code, role="propagator")
    propagate_id = propagate_id or ProduceID.new()
    signer = load_signer(settings)
    handle = _open_input(src_path)
    try:
        container = identify(handle).container
        labeler = metadata_labeler(container)
        previous, raw = _existing(labeler, handle)
        if previous is None and raw is not None:
            raise LabelError(
                f"{src_path}: carries an AIGC label that cannot be parsed; it is left as it is "
                "for review (labels are never removed or overwritten blindly)"
            )
        if previous is not None:
            label = previous.replace(ContentPropagator=code, PropagateID=propagate_id, ReservedCode2="")
        elif declared_ai or traces_found:
            value = LabelValue.POSSIBLY_AI_GENERATED if declared_ai else (LabelValue.SUSPECTED_AI_GENERATED)
            label = AigcLabel(
                Label=value,
                ContentProducer="",
                ProduceID="",
                ContentPropagator=code,
                PropagateID=propagate_id,
            )
        else:
            return LabelResult(
                os.fspath(src_path),
                None,
                container,
                None,
                (LabelKind.METADATA,),
                note="no label, no declaration and no trace: nothing to write",
            )
        label = _sign(signer, label, Slot.PLATFORM, container, labeler, handle)
        output, did_in_place = _write(
            labeler, handle, src_path, None if dst is None else Path(dst), label, in_place
        )
    except MediaError as exc:
        raise exc.with_path(src_path) from None
    finally:
        handle.close()
    return LabelResult(
        os.fspath(src_path),
        output,
        container,
        label,
        (LabelKind.METADATA,),
        in_place=did_in_place,
        previous=previous,
    )
