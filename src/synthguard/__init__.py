"""synthguard."""
