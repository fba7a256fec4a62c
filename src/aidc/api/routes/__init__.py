"""API routes, one module per area; each handler parses, calls one Platform/Security method, returns JSON."""
