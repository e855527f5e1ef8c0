"""Background jobs: the ``jobs`` table, the queue operations on it, the worker loop and the
handlers (materialize, finetune, inference, embeddings).

Importing this package imports nothing heavy; handlers import torch inside their functions.
"""
