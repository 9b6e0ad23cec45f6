"""Tests of the governance records (identity, consent, documents, generation, retention, casework)."""
