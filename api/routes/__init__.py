"""API routers, one module per resource; ``api.main`` includes them under ``/api/v1``."""
