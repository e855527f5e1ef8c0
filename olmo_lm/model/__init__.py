"""OLMo-family model definitions."""
