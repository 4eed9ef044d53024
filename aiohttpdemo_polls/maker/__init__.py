"""Making a poll and looking after it: the new-poll form and its rules, who may make polls, the
maker's private manage page and the results files behind its token."""
