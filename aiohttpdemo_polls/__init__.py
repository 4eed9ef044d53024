"""aiohttpdemo_polls: a server-rendered polling app on aiohttp and PostgreSQL."""
