"""``mediapurge bench``: the scenarios of the performance issue, run on loopback against the sandbox,
one JSON object printed per scenario, then the ratios against the baselines."""
