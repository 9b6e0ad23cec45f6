"""Implicit metadata labels: one module per container family (GB 45438 Annex E, TC260 guides)."""
