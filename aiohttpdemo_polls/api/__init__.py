"""The JSON API, a nested application under /api: its views, request bodies, problem documents and
OpenAPI document."""
