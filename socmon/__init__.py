"""socmon's shared kernel: config, logging, ECS helpers, the store, the database, the spool, the CLI."""

from socmon.errors import ConfigError, DeliveryError, Location, SocmonError, StoreError

__version__ = "0.1.0"

__all__ = [
    "ConfigError",
    "DeliveryError",
    "Location",
    "SocmonError",
    "StoreError",
    "__version__",
]
