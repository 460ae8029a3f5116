from __future__ import annotations

from collections.abc import Iterator

import pytest

from sluice.local import LocalCloud


@pytest.fixture(scope="package")
def cloud() -> Iterator[LocalCloud]:
    with LocalCloud() as running:
        yield running


@pytest.fixture(autouse=True)
def _no_faults(cloud: LocalCloud) -> Iterator[None]:
    yield
    cloud.runtime.clear_faults()
