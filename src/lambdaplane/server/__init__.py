"""The HTTP server: the ASGI app factory and the uvicorn runner."""
