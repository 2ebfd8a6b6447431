"""Route modules; each exposes route_handlers(state)."""
