"""Training modules of the language models."""
