"""Shared building blocks of the OLMo family: every architecture composes these, none re-writes
them (norms, rotary embeddings, attention, SwiGLU, mixture of experts, Gated DeltaNet)."""
