"""The FastAPI JSON API over the governance records, the audit log and the review engine."""
