"""Review of inputs and outputs against the characteristics database (Art. 10)."""
