"""The API platform, apart from the tracker's domain: authentication, permissions, throttling, parsers, pagination,
OpenAPI hooks, error handling (the contract layer), request guards, health and the API root."""
