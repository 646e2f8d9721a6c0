"""Where the dead-letter queue and the idempotency tokens live (spec 7.2, 7.3).

By default each is a reserved prefix at the root of the bucket an export writes to
(``dead-letter-queue/``, ``idempotency-tokens/``, CONTRACT §4). ``dlq_configuration.
storage_location`` and ``idempotency_design.storage.location`` move them to any folder
of any store, opened as destinations are (``StoreResolver``, ``--local-root``). Every
writer and reader asks here, so an export, ``dlq list|retry|purge``, ``status``, the
scheduler and ``lifecycle sweep`` agree on one place.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from dpexport.config.spec import ResolvedConfig
from dpexport.storage import layout
from dpexport.storage.base import Store

#: a URI -> its store and the key inside it (``StoreResolver.resolve``)
Opener = Callable[[str], tuple[Store, str]]


@dataclass(frozen=True)
class Place:
    """A store and the folder in it (``root``, ending with ``/`` or empty) that the
    layout's DLQ or token keys are built under."""

    store: Store
    root: str

    def uri(self) -> str:
        return self.store.uri(self.root)


def as_folder(key: str) -> str:
    """A location's key as a root: ``a/b`` -> ``a/b/``; a bucket root stays empty."""
    return key if not key or key.endswith("/") else key + "/"


def dlq_location(config: ResolvedConfig) -> str | None:
    """``dlq_configuration.storage_location``, or None for the default."""
    return config.dlq_configuration.storage_location or None


def tokens_location(config: ResolvedConfig) -> str | None:
    """``idempotency_design.storage.location``, or None for the default."""
    return config.idempotency_design.storage.location or None


def _place(
    location: str | None,
    default_root: str,
    export_store: Store,
    open_: Opener,
    wrap: Callable[[Store], Store] | None = None,
) -> Place:
    if location is None:
        return Place(export_store, default_root)
    store, key = open_(location)
    root = as_folder(key)
    if store.url == export_store.url and root == default_root:
        # the spec's own value names the default place: the export's store, as it
        # is opened for the export (server-side encryption, retries, test wrappers)
        return Place(export_store, default_root)
    return Place(wrap(store) if wrap is not None else store, root)


def dlq_place(config: ResolvedConfig, export_store: Store, open_: Opener) -> Place:
    """Where an export into ``export_store`` records its failure and quarantined rows."""
    return _place(dlq_location(config), layout.DLQ_PREFIX, export_store, open_)


def tokens_place(
    config: ResolvedConfig,
    export_store: Store,
    open_: Opener,
    wrap: Callable[[Store], Store] | None = None,
) -> Place:
    """Where an export into ``export_store`` keeps its token and its table's lease;
    ``wrap`` wraps a configured location's store as the export's own is wrapped."""
    return _place(tokens_location(config), layout.TOKENS_PREFIX, export_store, open_, wrap)


def dlq_places(
    config: ResolvedConfig, export_stores: Iterable[Store], open_: Opener
) -> list[Place]:
    """Every DLQ to read: the configured location, or the default prefix of each store."""
    location = dlq_location(config)
    if location is not None:
        store, key = open_(location)
        return [Place(store, as_folder(key))]
    return [Place(s, layout.DLQ_PREFIX) for s in export_stores]


@dataclass(frozen=True)
class StateRoots:
    """For ``lifecycle sweep``: the DLQ and token roots that hold on a store. A
    configured location holds on its own store only; the default on every store."""

    dlq: tuple[str, str] | None = None  # (store url, root) when configured
    tokens: tuple[str, str] | None = None

    @classmethod
    def from_config(cls, config: ResolvedConfig, open_: Opener) -> StateRoots:
        def where(location: str | None) -> tuple[str, str] | None:
            if location is None:
                return None
            store, key = open_(location)
            return store.url, as_folder(key)

        return cls(where(dlq_location(config)), where(tokens_location(config)))

    def dlq_root(self, store: Store) -> str | None:
        """The DLQ's root on ``store``, or None when the DLQ is elsewhere."""
        return _root(self.dlq, store, layout.DLQ_PREFIX)

    def tokens_root(self, store: Store) -> str | None:
        """The tokens' root on ``store``, or None when they are elsewhere."""
        return _root(self.tokens, store, layout.TOKENS_PREFIX)

    def configured_roots(self, store: Store) -> tuple[str, ...]:
        """The configured roots on ``store`` (kept out of tiering, like reserved prefixes)."""
        return tuple(p[1] for p in (self.dlq, self.tokens) if p is not None and p[0] == store.url)


def _root(place: tuple[str, str] | None, store: Store, default: str) -> str | None:
    if place is None:
        return default
    url, root = place
    return root if store.url == url else None
