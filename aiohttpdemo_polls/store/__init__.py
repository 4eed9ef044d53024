"""The database and nothing of HTTP: tables, the queries of each feature, votes (group commit), the
bus of changes (LISTEN), migrations, provisioning, and the embedded server."""
