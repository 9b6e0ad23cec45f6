"""Invisible watermarks (implicit labels inside the content) carrying the 64-bit ProduceID."""
