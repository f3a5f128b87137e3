from __future__ import annotations

from pathlib import Path

import pytest

from patron.config import Settings
from tests.conftest import TestDatabase, make_settings


@pytest.fixture
def settings(database: TestDatabase, tmp_path: Path) -> Settings:
    # Status files and backups in the test's own directory, never the working directory.
    return make_settings(database, status_dir=tmp_path / "status", backup_dir=tmp_path / "backups")
