"""Dolma-style curation: taggers write per-document attributes beside the documents, a filter
keeps or drops documents (and duplicate paragraphs) by those attributes, and deduplication tags
exact duplicate paragraphs (Bloom filter) and near-duplicate documents (MinHash + LSH)."""
