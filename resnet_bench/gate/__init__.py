"""The PR performance gate and run comparison: the statistics of a decision that fails on real
regressions and never on noise (``statistics``), two stored runs side by side and stored
baselines (``compare``), the gate's rounds of fresh base and head processes by a plan fixed up
front (``run``), the process side of a round (``worker``, run on either tree), and the base
ref's worktree (``git``)."""
