"""Tests of the HTTP API: authentication, access, the OpenAPI schema, crash safety, and each area."""
