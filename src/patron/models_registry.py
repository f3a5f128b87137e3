"""Import every models module so Base.metadata knows all tables (for Alembic and checks)."""

from __future__ import annotations

import importlib
import pkgutil

import patron


def load_all() -> None:
    for mod in pkgutil.walk_packages(patron.__path__, prefix="patron."):
        if mod.name.endswith(".models"):
            importlib.import_module(mod.name)
