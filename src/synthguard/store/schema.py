"""The whole schema: every module that declares tables on the one declarative ``Base``.

The migrations' environment and the schema test call ``full_metadata()`` so that the models of every
part (characteristics database, audit log, governance records, accounts) are compared with the
migrations, whichever of those parts the caller happened to import.
"""

from __future__ import annotations

import importlib
from typing import Final

import sqlalchemy as sa

from synthguard.store.models import Base

__all__ = ["MODEL_MODULES", "full_metadata"]

#: Every module that declares tables; add a new one here and write its migration.
MODEL_MODULES: Final = (
    "synthguard.store.models",
    "synthguard.audit.models",
    "synthguard.governance.models",
    "synthguard.accounts.models",
    "synthguard.governance.case_models",
)


def full_metadata() -> sa.MetaData:
    """``Base.metadata`` with the tables of every module in ``MODEL_MODULES`` registered."""
    for name in MODEL_MODULES:
        importlib.import_module(name)
    return Base.metadata
