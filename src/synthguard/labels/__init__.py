"""Labels: explicit (visible, audible), implicit in metadata, and watermarks."""
