"""Database functions of the labelling domain (keyword-only, one module per resource)."""
