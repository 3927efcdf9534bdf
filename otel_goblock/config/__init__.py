"""Config: YAML in the collector's shape, decoded into typed dataclasses.

Components declare their config as dataclasses (fields with defaults, `validate()`
returning a list of problems); `decode` turns the user's mapping into them and reports
every problem with its full key path.
"""

from otel_goblock.config.decode import ConfigError, decode
from otel_goblock.config.types import ByteSize, Duration, Endpoint

__all__ = ["ByteSize", "ConfigError", "Duration", "Endpoint", "decode"]
