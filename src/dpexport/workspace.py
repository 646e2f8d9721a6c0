"""One config, ready to use: where every command starts, from the shell or from Python.

A :class:`Workspace` holds a loaded config and the ``--local-root`` folder. It selects
tables (a name the config does not have is an :class:`~dpexport.errors.UnknownTable`
naming the choices), opens the warehouse and holds the config against its schemas, and
resolves the stores of URIs. The CLI and the functions in :mod:`dpexport.api` both go
through it, so both make the same checks before they touch anything.
"""

from __future__ import annotations

import difflib
import logging
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, TypeAlias

from dpexport.errors import (
    ConfigError,
    ConfigIssue,
    DpexportError,
    ExportError,
    TransientError,
    UnknownTable,
    UsageError,
)

if TYPE_CHECKING:
    from dpexport.config.spec import ResolvedConfig, TableSpec
    from dpexport.engines.base import Engine
    from dpexport.storage.base import Store
    from dpexport.storage.uri import StoreResolver

log = logging.getLogger(__name__)

#: What the public functions take as their config: a file, a loaded config, a workspace.
ConfigSource: TypeAlias = "Workspace | ResolvedConfig | str | os.PathLike[str]"


class Workspace:
    """A loaded config and where its buckets and KMS keys live (``local_root``)."""

    def __init__(
        self, config: ResolvedConfig, *, local_root: str | os.PathLike[str] | None = None
    ) -> None:
        from dpexport.security import transit

        self.config = config
        # spec 6.3 in_transit: the TLS floor of every client made from now on
        transit.configure(transit.from_config(config.encryption.in_transit))
        #: ``--local-root``: every cloud URI and KMS key maps to a folder under it
        self.local_root = Path(local_root).resolve() if local_root else None

    def __repr__(self) -> str:
        return f"Workspace({self.config.source_path!r}, local_root={self.local_root!r})"

    @classmethod
    def load(
        cls, path: str | os.PathLike[str], *, local_root: str | os.PathLike[str] | None = None
    ) -> Workspace:
        """Read and validate the config file at ``path`` (``ConfigError`` lists every
        problem; a missing file is a ``UsageError``)."""
        from dpexport.config import load_config

        if not Path(path).exists():
            raise UsageError(f"config file {str(path)!r} not found")
        return cls(load_config(path), local_root=local_root)

    @classmethod
    def of(
        cls, source: ConfigSource, *, local_root: str | os.PathLike[str] | None = None
    ) -> Workspace:
        """``source`` as a workspace: a config file is loaded, a loaded config wrapped."""
        if isinstance(source, Workspace):
            if local_root is not None and Path(local_root).resolve() != source.local_root:
                raise TypeError("a Workspace carries its own local_root; pass one or the other")
            return source
        if isinstance(source, str | os.PathLike):
            return cls.load(source, local_root=local_root)
        return cls(source, local_root=local_root)

    # -- tables ------------------------------------------------------------------------
    def table(self, name: str) -> TableSpec:
        """The table named ``table`` or ``dataset.table``."""
        try:
            return self.config.table(name)
        except KeyError:
            pass
        choices = [t.table for t in self.config.tables]
        known = choices + [t.qualified_name for t in self.config.tables]
        close = difflib.get_close_matches(name, known, n=1)
        raise UnknownTable(name, choices, close[0] if close else None) from None

    def select(self, names: str | Sequence[str] = ()) -> list[TableSpec]:
        """The named tables (a string is one name), or every table when none is named."""
        if isinstance(names, str):
            names = (names,)
        if not names:
            return list(self.config.tables)
        return [self.table(n) for n in names]

    # -- the warehouse -----------------------------------------------------------------
    def open_engine(self, principal: str | None = None) -> Engine:
        """The config's warehouse, opened (a relative DuckDB path is taken from the
        config file's folder) as ``principal`` where the warehouse takes an identity
        (BigQuery impersonates its service account); the caller closes it."""
        from dpexport.engines import open_engine
        from dpexport.security.identity import identity_of

        source = self.config.source_path
        try:
            return open_engine(
                self.config.warehouse,
                base_dir=Path(source).parent if source else None,
                identity=identity_of(self.config.service_accounts, principal),
            )
        except ConfigError as exc:  # named with the config file
            raise ConfigError(exc.issues, source) from None

    def check_schemas(self, engine: Engine) -> None:
        """Config problems only the warehouse shows (a column a setting names is missing,
        a source column uses a name dpexport reserves, an APPEND table has no cursor);
        ``ConfigError`` lists them all."""
        from dpexport.config.warehouse import schema_issues

        issues = schema_issues(self.config, engine)
        if issues:
            raise ConfigError(issues, source=self.config.source_path)

    @contextmanager
    def engine(
        self, *, unavailable_ok: bool = False, principal: str | None = None
    ) -> Iterator[Engine]:
        """The warehouse, opened and checked against the config, closed on exit. With
        ``unavailable_ok``, one that is unavailable for now (locked by another writer,
        down) is :class:`~dpexport.engines.unavailable.Unavailable`: each export fails
        with why, marked and queued like any failed export."""
        try:
            engine = self.open_engine(principal)
        except TransientError as exc:
            if not unavailable_ok:
                raise
            from dpexport.engines.unavailable import Unavailable

            log.error("warehouse unavailable, every export of this run fails: %s", exc)
            yield Unavailable(exc)
            return
        try:
            self.check_schemas(engine)
            yield engine
        finally:
            engine.close()

    def hold(self) -> tuple[list[ConfigIssue], str | None]:
        """``check``'s pass over the warehouse: every problem it shows in the config
        (:func:`dpexport.config.warehouse.warehouse_issues`), and why the warehouse
        was not asked (``None``: it was). A warehouse that does not open or answer
        leaves what the config alone shows
        (:func:`~dpexport.config.warehouse.offline_issues`)."""
        from dpexport.config.warehouse import offline_issues, warehouse_issues

        try:
            engine = self.open_engine()
        except ConfigError as exc:  # the warehouse the config names cannot be one
            return [*exc.issues, *offline_issues(self.config)], exc.issues[0].render()
        except DpexportError as exc:  # no such file, no credentials, no client
            return offline_issues(self.config), str(exc)
        try:
            return warehouse_issues(self.config, engine), None
        except ExportError as exc:  # it opened, but does not answer
            return offline_issues(self.config), str(exc)
        finally:
            engine.close()

    # -- stores ------------------------------------------------------------------------
    @cached_property
    def stores(self) -> StoreResolver:
        """Opens (and caches) the store of each URI, under ``local_root`` when set."""
        from dpexport.reliability.retry import RetryPolicy
        from dpexport.storage.uri import StoreResolver

        return StoreResolver(self.local_root, RetryPolicy.from_config(self.config))

    def destination(self, spec: TableSpec) -> tuple[Store, str]:
        """The store of a table's destination and its folder key (``""`` or ending in ``/``)."""
        from dpexport.planning.plan import destination_of

        return destination_of(self.stores, spec.destination)

    def config_stores(self) -> list[Store]:
        """The stores of the config's destinations (and of the DLQ's storage location)."""
        from dpexport.ops.logs import config_stores

        return config_stores(self.config, self.local_root)
