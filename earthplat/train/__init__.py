"""Masking strategies, losses, the pretraining module and fine-tuning tasks."""
