"""Modular experts: FlexOlmo (upcycle, train alone, merge, opt out), BAR (branch, adapt,
route) and Merge to Learn (task vectors)."""
