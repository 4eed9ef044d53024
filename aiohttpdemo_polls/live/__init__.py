"""Live results: the hub that tells every watching WebSocket of new counts, and its endpoint."""
