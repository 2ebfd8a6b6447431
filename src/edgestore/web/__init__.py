"""The HTTP service: a thin Litestar shell over the library (``create_app``)."""
