"""The registry: every container has exactly one metadata labeler, names are unique and stable."""

from __future__ import annotations

from synthguard.labels.base import LabelKind
from synthguard.labels.registry import metadata_labeler, metadata_labelers
from synthguard.media import Container


def test_every_container_has_one_metadata_labeler() -> None:
    for container in Container:
        labeler = metadata_labeler(container)
        assert container in labeler.containers
        assert labeler.kind is LabelKind.METADATA


def test_names_are_unique_and_lowercase() -> None:
    names = [labeler.name for labeler in metadata_labelers()]
    assert len(names) == len(set(names))
    assert all(name == name.lower() and " " not in name for name in names)


def test_every_labeler_serves_exactly_what_the_table_says() -> None:
    served = sorted(c.value for labeler in metadata_labelers() for c in labeler.containers)
    assert served == sorted(c.value for c in Container)
