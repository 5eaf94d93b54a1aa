"""The operations console (the `console` extra): FastAPI pages beside a running gateway."""
