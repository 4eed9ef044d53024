"""The public pages: the index, a poll and its vote, results, the presenter view, the language
switch, and the probes (healthz, robots.txt)."""
