"""The public surface: ``synthguard.__all__`` is sorted and lists every public name it imports."""

from __future__ import annotations

import types

import synthguard


def test_all_is_sorted_and_complete() -> None:
    assert synthguard.__all__ == sorted(synthguard.__all__)
    public = {
        name
        for name, value in vars(synthguard).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }
    assert public == set(synthguard.__all__)
