"""Choosing a deployment target: the rules that pick a configuration from measured rows under
the user's constraints (``rules``: accuracy established, latency under load compared like with
like, the margin over the runner-up), and measuring more where the rows cannot decide: the
pick's finalists re-measured in fresh processes, alternated, until its margin is outside their
cross-process interval or a time budget runs out (``confirm``, on the gate's process machinery),
so no two configurations that this machine's noise cannot tell apart are ranked."""
