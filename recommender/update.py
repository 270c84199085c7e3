"""Close the loop: new interactions and items update a served recommender without a rebuild.

Two paths:
- **online, per user**: a like or "seen" in the chat is stored as an interaction with its source
  (``record_interactions``); ``online_history`` puts those events after a known user's history
  for every later session, so the next list follows at once (the retriever is unchanged);
- **incremental update** (``Updater.update`` or ``recommender update --interactions new.csv``):
  events and catalogue items are appended, the retriever is refreshed component by component
  (``recommender.retrieval.incremental``) and the appended data is written beside the old one and
  switched to atomically, so a crash at any point leaves the previous state loadable.

    from recommender.update import Updater
    updater = Updater(dataset, retriever)                   # replays the stored appended state
    report = updater.update(NewEvents.of(["1"], ["50"], [9e8]), items=[])
    rec = updater.recommender(rec)                          # the same scorer and config, new data
    print(report.lines())

On disk (``default_state_dir``: ``$RECOMMENDER_CACHE/updates/<dataset>-<fingerprint>``):
``manifest.json`` names the current version folder ``vNNNNNN/`` holding every event and item
appended since the base data (``events.npz``, ``items.jsonl``, ``item_vectors.npy``, ``info.json``).
Caches are keyed by content (catalogue / data fingerprints): the update writes the embedding cache of
the grown catalogue (only the new items encoded) and leaves every other cache as it is; a full
rebuild of the grown data tunes and trains under new keys.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from recommender.assets import default_cache_dir
from recommender.data import DataError, Dataset, Item
from recommender.data.split import LeaveOneOutSplit
from recommender.data.updates import NewEvents, extend_dataset
from recommender.retrieval.incremental import RefreshReport, refresh_hybrid, retrain_due
from recommender.store import with_stored_interactions

MANIFEST = "manifest.json"
CRASH_ENV = "RECOMMENDER_UPDATE_CRASH_AT"  # tests: SIGKILL this process at the named point of a write
CRASH_POINTS = ("events-written", "version-written", "before-switch", "after-switch")
KEEP_VERSIONS = 2  # the current version folder and the one before it
POSITIVE_ACTIONS = ("like", "seen")  # chat feedback that counts as an interaction


def default_state_dir(dataset: Dataset) -> Path:
    """Where the appended state of ``dataset`` lives: one folder per base data fingerprint."""
    return default_cache_dir() / "updates" / f"{dataset.name}-{dataset.fingerprint()}"


def _crash_point(name: str) -> None:
    if os.environ.get(CRASH_ENV) == name:
        os.kill(os.getpid(), signal.SIGKILL)


def _fsync(path: Path) -> None:
    flags = os.O_RDONLY | (os.O_DIRECTORY if path.is_dir() else 0)
    handle = os.open(path, flags)
    try:
        os.fsync(handle)
    finally:
        os.close(handle)


# ---------------------------------------------------------------- the stored state


@dataclass(frozen=True)
class Appended:
    """Everything appended since the base data: items, events, the items' vectors, bookkeeping."""

    items: tuple[Item, ...] = ()
    events: NewEvents = field(default_factory=NewEvents.empty)
    vectors: np.ndarray | None = None  # [M, D] vectors of ``items`` (None: not embedded yet)
    info: dict = field(default_factory=dict)  # "updates": one record per update; "store_applied_until"


class UpdateState:
    """The appended state on disk: ``manifest.json`` -> ``vNNNNNN/``; written beside, switched atomically."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder).expanduser()

    def version(self) -> str | None:
        """The current version folder's name, or None before the first update."""
        try:
            return json.loads((self.folder / MANIFEST).read_text())["version"]
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError) as error:
            raise DataError(f"{self.folder / MANIFEST}: unreadable update manifest ({error}).") from None

    def read(self) -> Appended:
        """The current appended state (empty before the first update)."""
        version = self.version()
        if version is None:
            return Appended()
        folder = self.folder / version
        try:
            with np.load(folder / "events.npz", allow_pickle=False) as stored:
                ratings = stored["ratings"] if "ratings" in stored.files else None
                events = NewEvents(stored["users"], stored["items"], stored["timestamps"], ratings, stored["sources"])
            items = tuple(
                Item(r["id"], r["title"], r["year"], tuple(r["genres"]), r["text"], r.get("attributes", {}))
                for r in map(json.loads, (folder / "items.jsonl").read_text().splitlines())
            )
            vectors_path = folder / "item_vectors.npy"
            vectors = np.load(vectors_path) if vectors_path.is_file() else None
            info = json.loads((folder / "info.json").read_text())
        except (OSError, ValueError, KeyError) as error:
            raise DataError(f"{folder}: the update state named by the manifest is unreadable ({error}).") from None
        return Appended(items, events, vectors, info)

    def write(self, appended: Appended) -> str:
        """Write ``appended`` as a new version folder, then switch the manifest to it (os.replace).
        Returns the new version's name. Old versions beyond ``KEEP_VERSIONS`` are removed after."""
        self.folder.mkdir(parents=True, exist_ok=True)
        current = self.version()
        number = int(current[1:]) + 1 if current else 1
        name = f"v{number:06d}"
        staging = self.folder / f".{name}.tmp-{os.getpid()}"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir()
        events = appended.events
        sources = events.sources if events.sources is not None else np.full(len(events), "api")
        arrays = {"users": events.users.astype(str), "items": events.items.astype(str),
                  "timestamps": events.timestamps.astype(np.float64), "sources": sources.astype(str)}  # fmt: skip
        if events.ratings is not None:
            arrays["ratings"] = events.ratings.astype(np.float32)
        with open(staging / "events.npz", "wb") as handle:
            np.savez(handle, **arrays)
        _crash_point("events-written")
        lines = [json.dumps({**asdict(item), "attributes": dict(item.attributes)}, ensure_ascii=False)
                 for item in appended.items]  # fmt: skip
        (staging / "items.jsonl").write_text("".join(line + "\n" for line in lines), encoding="utf-8")
        if appended.vectors is not None:
            np.save(staging / "item_vectors.npy", appended.vectors)
        (staging / "info.json").write_text(json.dumps(appended.info, indent=1))
        for file in staging.iterdir():
            _fsync(file)
        final = self.folder / name
        shutil.rmtree(final, ignore_errors=True)  # left by a run killed before its switch: never current
        os.rename(staging, final)
        _fsync(self.folder)
        _crash_point("version-written")
        manifest = self.folder / f".{MANIFEST}.tmp-{os.getpid()}"
        manifest.write_text(json.dumps({"version": name, "written": time.time()}))
        _fsync(manifest)
        _crash_point("before-switch")
        os.replace(manifest, self.folder / MANIFEST)  # the switch: atomic on POSIX
        _fsync(self.folder)
        _crash_point("after-switch")
        self._prune(number)
        return name

    def _prune(self, current: int) -> None:
        for path in self.folder.iterdir():
            stale_version = path.name.startswith("v") and path.name[1:].isdigit()
            if stale_version and int(path.name[1:]) <= current - KEEP_VERSIONS:
                shutil.rmtree(path, ignore_errors=True)
            elif path.name.startswith(".") and ".tmp-" in path.name and str(os.getpid()) not in path.name:
                shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)


# ---------------------------------------------------------------- the updater


@dataclass(frozen=True)
class UpdateReport:
    """One update: what was appended, what the refresh touched, how long it took."""

    events: int
    new_items: int
    refresh: RefreshReport
    seconds: float
    version: str | None
    retrain: str  # why the sequential model should be retrained now ("" = not yet)
    total_events: int  # appended since the base data
    total_items: int

    def lines(self) -> list[str]:
        out = [
            f"appended {self.events} interactions and {self.new_items} items in {self.seconds:.2f} s "
            f"(state {self.version}; {self.total_events} events and {self.total_items} items since the base data)",
            f"co-occurrence: {self.refresh.rows_touched} rows touched by {self.refresh.users} users "
            + ("(equal to a full rebuild)" if self.refresh.exact_cooccurrence else "(pruned rows: approximate)"),
            f"embeddings: {self.refresh.encoded_items} new items encoded, the others reused",
        ]
        out.append(f"sequential model: retrain due ({self.retrain})" if self.retrain else
                   "sequential model: new events folded into its inputs; no retrain due yet")  # fmt: skip
        return out


class Updater:
    """The served data and retriever after every stored update, and the way to add more.

    Args:
        base: the dataset the retriever was built on (e.g. ``load_dataset("ml-100k")``).
        retriever: the hybrid retriever built on ``base`` (``build_default_retriever``).
        folder: the appended state (default: ``default_state_dir(base)``); None with ``persist=False``.
        encoder: embeds new items (default: the retriever's text encoder).
        persist: False keeps updates in memory only (simulations).
    """

    def __init__(self, base: Dataset, retriever, folder: str | Path | None = None, encoder=None, persist: bool = True):
        self.base, self.base_retriever, self.encoder, self.persist = base, retriever, encoder, persist
        self.state = UpdateState(folder if folder is not None else default_state_dir(base)) if persist else None
        self.base_split = LeaveOneOutSplit(base.interactions)
        self.trained_events = int(len(self.base_split.train_csr()[1]))
        self.dataset, self.split, self.retriever = base, self.base_split, retriever
        self.appended = self.state.read() if self.state is not None else Appended()
        if len(self.appended.events) or self.appended.items:
            self._refresh(base, self.base_split, retriever, self.appended.items, self.appended.events,
                          self.appended.vectors)  # fmt: skip

    def _refresh(self, dataset, split, retriever, items, events, vectors=None):
        """Swap in the data and retriever with ``items`` and ``events`` added; returns what changed."""
        grown = extend_dataset(dataset, items, events)
        new_split = LeaveOneOutSplit(grown.interactions)
        users = sorted(set(events.users.tolist()))
        refreshed, new_vectors, report = refresh_hybrid(
            retriever, grown.catalog, split, new_split, users, vectors, self.encoder
        )
        self.dataset, self.split, self.retriever = grown, new_split, refreshed
        return new_vectors, report

    def update(
        self, events: NewEvents, items: Sequence[Item] = (), note: dict | None = None, write_cache: bool = True
    ) -> UpdateReport:
        """Append ``events`` and ``items``; refresh the retriever; store the new state atomically.

        Nothing changes (in memory or on disk) when any check fails; the in-memory state switches
        only after the stored one did.
        """
        clock = time.perf_counter()
        items = tuple(items)
        known = self.dataset.catalog
        for item in items:
            if item.id in known.index:
                raise DataError(f"update: field 'item_id': item {item.id!r} is already in the catalogue.")
        if len(events) and not np.isfinite(events.timestamps).all():
            raise DataError("update: field 'timestamp' must be a finite number for every event.")
        before = (self.dataset, self.split, self.retriever)
        new_vectors, refresh = self._refresh(*before, items, events)
        vectors = self.appended.vectors
        if items:
            vectors = new_vectors if vectors is None else np.concatenate([vectors, new_vectors])
        history = list(self.appended.info.get("updates", []))
        history.append({"time": time.time(), "events": len(events), "items": len(items), **(note or {})})
        info = {**self.appended.info, **(note or {}), "updates": history}
        appended = Appended(self.appended.items + items, self.appended.events.concat(events), vectors, info)
        try:
            version = self.state.write(appended) if self.state is not None else None
        except BaseException:
            self.dataset, self.split, self.retriever = before  # the stored state is the old one
            raise
        self.appended = appended
        if write_cache and items:
            seed_embedding_cache(self.retriever, self.dataset)
        retrain = ""
        if "sequential" in getattr(self.retriever, "components", {}):
            retrain = retrain_due(
                self.trained_events, len(self.base.catalog), len(appended.events), len(appended.items)
            )
        return UpdateReport(
            len(events), len(items), refresh, time.perf_counter() - clock, version, retrain,
            len(appended.events), len(appended.items),
        )  # fmt: skip

    def recommender(self, rec):
        """A ``Recommender`` like ``rec`` (same scorer and config) over the updated data and retriever."""
        from recommender.pipeline import Recommender

        return Recommender(self.dataset, self.retriever, rec.scorer, rec.config)


def seed_embedding_cache(retriever, dataset: Dataset) -> None:
    """Write the grown catalogue's item vectors where ``item_embeddings`` looks for them, so a later
    full rebuild encodes nothing already encoded."""
    from recommender.retrieval.embeddings import DEFAULT_TEMPLATE, cache_key, encoder_name

    text = getattr(retriever, "text", None)
    if text is None or text.encoder is None:
        return
    folder = default_cache_dir()
    stem = cache_key(dataset.catalog, text.encoder, DEFAULT_TEMPLATE)
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f"{stem}.tmp.npy"
    np.save(tmp, text.vectors)
    os.replace(tmp, folder / f"{stem}.npy")
    meta = {"model": encoder_name(text.encoder), "fingerprint": dataset.catalog.fingerprint(),
            "n_items": len(dataset.catalog), "dim": int(text.vectors.shape[1]),
            "template": DEFAULT_TEMPLATE}  # fmt: skip
    (folder / f"{stem}.json").write_text(json.dumps(meta, indent=1))


def with_updates(rec, folder: str | Path | None = None, encoder=None) -> tuple:
    """(``Recommender`` over the stored updates of ``rec``'s dataset, its ``Updater``); ``rec``'s own
    data when nothing was ever appended. The serving hook: call it once after ``from_pretrained``."""
    updater = Updater(rec.dataset, rec.retriever, folder, encoder)
    return (updater.recommender(rec) if updater.dataset is not rec.dataset else rec), updater


# ---------------------------------------------------------------- online, per user


def record_interactions(
    store,
    user_id: str | int,
    item_ids: Sequence[str | int],
    source: str,
    session_id: str | None = None,
    timestamp: float | None = None,
) -> list[int]:
    """Store items a known user liked or marked seen as interactions (one transaction); returns ids.

    The chat calls it at a like or a seen: ``record_interactions(store, user, [item_id], "chat:like",
    session_id)``. ``online_history`` reads them back in every later session."""
    return store.record_interactions(user_id, item_ids, source, session_id=session_id, timestamp=timestamp)


def online_history(rec, store, user_id: str | int) -> list[str]:
    """A user's history with the interactions stored since the data was loaded, oldest first:
    the dataset's events (when the user is in it) then stored ones not already there. Ids that the
    catalogue does not know are left out. Pass it as ``rec.recommend(history=...)``."""
    user = str(user_id)
    known = rec.user_history(user) if user in rec.split.sequences else []
    return with_stored_interactions(known, store, user, rec.catalog)


def events_from_store(store, after_id: int = 0) -> tuple[NewEvents, int]:
    """Stored interactions with an id above ``after_id`` as ``NewEvents`` (source kept), and the
    last id read (``after_id`` when there is none): ``recommender update --from-db`` folds them in."""
    rows = store.appended_interactions(after_id=after_id)
    if not rows:
        return NewEvents.empty(), after_id
    events = NewEvents.of(
        [r["user_id"] for r in rows], [r["item_id"] for r in rows], [r["time"] for r in rows],
        source=[r["source"] for r in rows],
    )  # fmt: skip
    return events, int(rows[-1]["id"])
