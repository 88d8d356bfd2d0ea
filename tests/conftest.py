"""Suite-wide ordering: the test that takes the whole mesh down runs last."""

from __future__ import annotations

import pytest


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    items.sort(key=lambda item: item.get_closest_marker("mesh_lifecycle") is not None)
