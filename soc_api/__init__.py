"""The FastAPI application and web console."""
