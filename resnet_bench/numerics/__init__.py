"""Numbers about numbers: the precision table (per backend x device x precision: what is built,
what is set, what runs, which tolerance and which roof: ``precision``), how close a backend's
outputs must be to PyTorch fp32 (``tolerances``), and the agreement metrics between two sets of
logits (``agreement``: error, top-1/top-5, margin-aware top-1, accuracy against labels)."""
