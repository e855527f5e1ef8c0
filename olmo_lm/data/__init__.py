"""Tokenizers and token datasets."""
