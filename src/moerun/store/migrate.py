"""Bringing a ledger database to the newest schema with the packaged Alembic migrations."""

from __future__ import annotations

from importlib import resources

from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from moerun.errors import StoreError


def alembic_config(database_url: str) -> Config:
    """An Alembic config pointing at the migrations inside the package."""
    cfg = Config()
    cfg.set_main_option("script_location", str(resources.files("moerun.store") / "migrations"))
    cfg.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return cfg


def upgrade(database_url: str) -> None:
    """Create or migrate the ledger's tables (idempotent)."""
    cfg = alembic_config(database_url)
    try:
        engine = create_engine(database_url)
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")
        engine.dispose()
    except SQLAlchemyError as exc:
        first_line = str(exc).splitlines()[0] if str(exc) else ""
        raise StoreError(
            f"ledger database {redact(database_url)}: {type(exc).__name__}: {first_line}"
        ) from exc


def redact(database_url: str) -> str:
    """The URL with any password hidden."""
    try:
        return make_url(database_url).render_as_string(hide_password=True)
    except Exception:
        return "<unparseable URL>"
