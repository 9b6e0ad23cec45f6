"""Declarative models of governance (tables created only by the migrations in ``store/migrations``)."""

from __future__ import annotations

from synthguard.store.models import Base

__all__ = ["Base"]
