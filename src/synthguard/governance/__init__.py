"""Governance records of the Deep Synthesis Provisions: identity, consent, disposal, complaints,
rumors, reports, documents, generation records and retention."""
