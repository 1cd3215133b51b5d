"""The web console: server-rendered, read-only pages for SOC analysts and managers (vi / en)."""
