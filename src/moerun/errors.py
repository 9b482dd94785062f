"""The exception tree of moerun, written down in one place.

Every error a user can cause derives from `MoerunError`; the CLI prints its message on one
line and exits with status 2. Anything else is an internal failure (exit status 1).
"""

from __future__ import annotations


class MoerunError(Exception):
    """Base of every error caused by input moerun cannot use."""


class ConfigError(MoerunError):
    """A model config.json is missing, malformed or lacks a required field."""


class UnsupportedModelError(ConfigError):
    """The config's model_type is not one moerun knows how to size."""


class CatalogError(MoerunError):
    """A catalog file (GPUs, prices, providers) is invalid, or an id is not in it."""


class LayoutError(MoerunError):
    """A deployment that cannot run was asked to be simulated or deployed."""


class UsageError(MoerunError):
    """A command-line value is nonsensical (zero GPUs, negative context, ...)."""


class GatewayConfigError(MoerunError):
    """A gateway config file is malformed, or names a missing backend, provider or secret."""


class StoreError(MoerunError):
    """The usage ledger database cannot be reached, migrated or read."""


class LedgerOutage(StoreError):
    """The ledger database is down or unreachable (not a fault of the row being written)."""


class SpoolError(StoreError):
    """The ledger's local spool cannot be written: the one case that refuses requests."""
