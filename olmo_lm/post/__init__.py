"""Post-training (Tulu 3): SFT, DPO, RLVR and reward models on the shared training core."""
