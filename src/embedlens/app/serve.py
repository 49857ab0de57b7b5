"""``embedlens serve``: a read-only HTTP API and explorer page over one run folder.

:class:`RunService` answers the questions (methods, title search, similar movies, top-K for a
user, a user's history, cold start, a 2-D map); :func:`create_app` puts it behind FastAPI.
Every value a request carries is checked against what the run holds (its methods, movie ids
and titles, user ids) and bounded in size; nothing in a request reaches the filesystem. The
only files the server writes are caches beside a method's own (a map layout, an HNSW
index, precomputed answers). Each method is loaded once, in the background after start-up
or on its first query, and kept.
"""

from __future__ import annotations

import gc
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property, partial
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import parse_qsl

import numpy as np
import orjson
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import BaseModel, Field

from embedlens.app.answers import (
    PRECOMPUTED_K,
    TopLists,
    cached_lists,
    nearest_lists,
    run_key,
    train_digest,
    user_lists,
    vectors_key,
)
from embedlens.app.explorer import explorer_page
from embedlens.app.layout import cached_layout, resolve_layout
from embedlens.app.queries import able_methods, can_answer, read_leaderboard
from embedlens.app.report import main_genre_of
from embedlens.app.train import HeldOut, load_heldout, load_train
from embedlens.app.vector_index import (
    ANN_MIN_ITEMS,
    MovieIndex,
    movie_index,
    resolve_index,
)
from embedlens.core.embeddings import (
    Embeddings,
    l2_normalize,
    normalize_title,
)
from embedlens.core.errors import DataError, EmbedlensError, UnknownNameError
from embedlens.core.files import json_safe, read_json_object
from embedlens.core.ids import typed_int
from embedlens.io.runs import RUN_FILE, RunInfo, load_run
from embedlens.methods.base import ColdStart, ItemVectors, Model, Scorer, can
from embedlens.methods.registry import get_method

T = TypeVar("T")

#: Largest ``k`` a query may ask for, and longest text it may send.
MAX_K = PRECOMPUTED_K  # so that with --precompute every query is a lookup
MAX_TEXT = 200
MAX_FIELDS = 20
#: The kinds of query a method may answer (see :func:`embedlens.app.queries.method_dir`).
NEEDS = ("any", "items", "similar", "coldstart")


@dataclass(frozen=True)
class ColdStartQuery:
    """A movie nobody has rated, described by its side information."""

    genres: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    year: int | None = None
    title: str | None = None

    def checked(self) -> ColdStartQuery:
        """This query, or one clear error naming the field that is out of bounds."""
        for name, values in (("genres", self.genres), ("tags", self.tags)):
            if len(values) > MAX_FIELDS:
                raise DataError(f"{name}: at most {MAX_FIELDS} values, got {len(values)}.")
            for value in values:
                _check_text(name, value)
        if self.title is not None:
            _check_text("title", self.title)
        if self.year is not None and not 1870 <= self.year <= 2100:
            raise DataError(f"year must be between 1870 and 2100, got {self.year}.")
        if not (self.genres or self.tags or self.title or self.year is not None):
            raise DataError("Describe the movie: give at least one of genres, tags, year "
                            "or title.")
        return self


class ColdStartBody(BaseModel):
    """The body of ``POST /api/coldstart``."""

    genres: list[str] = Field(default_factory=list, max_length=MAX_FIELDS)
    tags: list[str] = Field(default_factory=list, max_length=MAX_FIELDS)
    year: int | None = None
    title: str | None = Field(default=None, max_length=MAX_TEXT)
    method: str | None = Field(default=None, max_length=MAX_TEXT)
    k: int = Field(default=10, ge=1, le=MAX_K)


def _check_text(name: str, value: str) -> None:
    if len(value) > MAX_TEXT:
        raise DataError(f"{name}: at most {MAX_TEXT} characters, got {len(value)}.")


def check_k(k: int) -> int:
    """``k`` if it is 1..MAX_K, else one clear error."""
    if not 1 <= k <= MAX_K:
        raise DataError(f"k must be between 1 and {MAX_K}, got {k}.")
    return k


class RunService:
    """The answers ``embedlens serve`` gives for one run folder (a full ``embedlens run`` or
    one method's ``embedlens train``). Thread-safe: models load once, under a lock."""

    def __init__(self, run: str | Path, data_dir: str | Path | None = None,
                 layout: str = "auto", index: str = "auto",
                 log: Callable[[str], None] | None = None, precompute: bool = False) -> None:
        self.run = Path(run)
        self.precompute = precompute
        self.data_dir = data_dir
        self.log = log
        self.layout = resolve_layout(layout)  # both checked before anything is read
        resolve_index(index, 0)
        if (self.run / RUN_FILE).is_file():
            self.board = None
            info = RunInfo.load(self.run)
            self.dirs = {info.method: self.run}
        else:
            self.board = read_leaderboard(self.run)  # one clear error if it is not a run
            self.dirs = {row.method: self.run / row.method for row in self.board.fitted()}
        # which methods answer which query, best first, decided once (no file is read per
        # request, and a request's method name is only ever looked up in these lists)
        self.able: dict[str, list[str]] = {}
        for need in NEEDS:
            try:
                self.able[need] = (able_methods(self.run, need) if self.board is not None
                                   else [m for m in self.dirs if can_answer(m, need)])
            except EmbedlensError:  # no method of the run can answer it
                self.able[need] = []
        saved = load_train(next(iter(self.dirs.values())))
        if saved is None:
            raise DataError(f"{self.run} has no train.npz (runs made before it was kept); "
                            "re-run it to serve it.")
        self.train, titles = saved
        ids = self.train.items.ids
        self.titles: dict[Any, str] = (
            {} if titles is None else dict(zip(ids.tolist(), titles.tolist(), strict=True)))
        self.index_kind = resolve_index(index, len(ids))
        if (index == "auto" and self.index_kind == "exact" and len(ids) >= ANN_MIN_ITEMS
                and log is not None):
            log(f"{len(ids):,} movies: exact search takes tens of milliseconds per query; "
                "pip install 'embedlens[ann]' for an HNSW index.")
        self._models: dict[str, Model] = {}
        self._unit: dict[str, Embeddings] = {}
        self._scorers: dict[str, Scorer] = {}
        self._maps: dict[str, dict[str, Any]] = {}
        self._indexes: dict[str, MovieIndex] = {}
        # (kind, method) -> answers computed ahead (--precompute); a query reads them once
        # they are there and searches until then
        self._lists: dict[tuple[str, str], TopLists] = {}
        self._lock = threading.Lock()
        self.ready = threading.Event()  # set once warm() has loaded every method

    # -- which method answers ------------------------------------------------------------
    def method_for(self, method: str | None, need: str) -> str:
        """The method a query reads: ``method`` when given (checked against the run), else
        the best one of the run that can answer ``need`` ("any", "items", "similar",
        "coldstart")."""
        able = self.able[need]
        if method is None:
            if not able:
                raise DataError(f"No method of {self.run} can answer this ({need} needed).")
            return able[0]
        _check_text("method", method)
        if method not in able:
            known = ", ".join(able) or "none"
            raise DataError(f"{method} is not a method of this run that can answer this; "
                            f"choose from: {known}.")
        return method

    def model(self, method: str) -> Model:
        """``method``'s fitted model, loaded on first use."""
        with self._lock:
            if method not in self._models:
                self._models[method] = load_run(self.dirs[method])[1]
            return self._models[method]

    def _items(self, method: str) -> Embeddings:
        model = self.model(method)
        if not isinstance(model, ItemVectors):
            raise DataError(f"{method} has no movie vectors; choose a method that has.")
        return model.item_vectors()

    def _once(self, store: dict[str, T], method: str, build: Callable[[], T]) -> T:
        """``store[method]``, built on first use. Built outside the lock (it may take
        seconds, and other queries go on meanwhile); if two threads built it, the first
        kept wins."""
        with self._lock:
            cached = store.get(method)
        if cached is not None:
            return cached
        built = build()
        with self._lock:
            return store.setdefault(method, built)

    def _unit_items(self, method: str) -> Embeddings:
        """``method``'s movie vectors scaled to unit length, once: a cosine query is then
        one product, not a normalisation of the whole table per request (item_vectors() may
        centre a copy of the table)."""
        return self._once(self._unit, method, lambda: self._items(method).normalized())

    def _index(self, method: str) -> MovieIndex:
        """The nearest-movie search over ``method``'s unit vectors, built (or read from the
        run folder) once."""
        return self._once(self._indexes, method, lambda: movie_index(
            self._unit_items(method).vectors, self.index_kind, self.dirs[method],
            threads=os.cpu_count() or 1, log=self._say(method)))

    def _say(self, method: str) -> Callable[[str], None] | None:
        if self.log is None:
            return None
        log = self.log
        return lambda line: log(f"{method}: {line}")

    # the title search's forms and the popularity that orders its hits are made on first
    # use or by warm(), not before the server answers (a second of its start-up at 59k
    # movies)
    @cached_property
    def popularity(self) -> np.ndarray:
        """How many train users have each movie, in train order."""
        return self.train.item_counts()

    @cached_property
    def _forms(self) -> list[str]:
        return [normalize_title(self.titles.get(i, "")) for i in self.train.items.ids.tolist()]

    def warm(self) -> None:
        """Load every method, its movie search and its scorer now rather than on its first
        query (the server does this in the background once it answers)."""
        _ = self._heldout  # read once (or split again, for runs made before it was kept)
        _ = self._forms, self.popularity
        for method in self.dirs:
            try:
                self.model(method)
                if method in self.able["items"]:
                    self._index(method)
                self._scorer(method)
            except EmbedlensError as exc:  # the query will report it; warming goes on
                if self.log is not None:
                    self.log(f"{method}: {exc}")
        # what is loaded now lives as long as the server: out of the garbage collector's
        # sight, a full collection no longer walks the run's millions of objects (titles,
        # ids) in the middle of a query (tail latency under load); frozen before the server
        # says it is ready, so that this one full collection is not in the middle either
        gc.collect()
        gc.freeze()
        self.ready.set()
        if self.precompute:
            self.compute_answers()
            gc.freeze()  # the lists are a few arrays: nothing to collect, just keep it so

    def compute_answers(self) -> None:
        """Every method's :data:`~embedlens.app.answers.PRECOMPUTED_K` nearest movies per
        movie and best movies per user, best method first, read from the run folder or
        computed and saved there; each kind is used as soon as it is there."""
        train_key = train_digest(self.train) if self.able["any"] else ""
        for method in self.dirs:
            try:
                if method in self.able["similar"]:
                    unit = self._unit_items(method).vectors
                    self._lists[("similar", method)] = cached_lists(
                        self.dirs[method] / "answers-similar.npz",
                        vectors_key(unit, PRECOMPUTED_K), partial(nearest_lists, unit))
                if method in self.able["any"]:
                    self._lists[("recommend", method)] = cached_lists(
                        self.dirs[method] / "answers-recommend.npz",
                        run_key(self.dirs[method] / RUN_FILE, train_key, PRECOMPUTED_K),
                        partial(user_lists, self._scorer(method), self.train))
                if self.log is not None:
                    self.log(f"{method}: answers precomputed")
            except EmbedlensError as exc:  # its queries search, as without --precompute
                if self.log is not None:
                    self.log(f"{method}: {exc}")

    def _scorer(self, method: str) -> Scorer:
        """``method``'s scorer over the run's train matrix, built once (it may derive
        every user's vector)."""
        model = self.model(method)
        with self._lock:
            if method not in self._scorers:
                self._scorers[method] = model.scorer(self.train)
            return self._scorers[method]

    # -- answers --------------------------------------------------------------------------
    def methods(self) -> list[dict[str, Any]]:
        """Every method of the run, best first, with what it can answer and its
        leaderboard row (when the run has a leaderboard)."""
        rows = {r.method: r.to_dict() for r in self.board.rows} if self.board else {}
        out = []
        for rank, name in enumerate(self.dirs, start=1):
            cls = get_method(name)
            # every method recommends; "items": it has movie vectors (similar, map)
            with self._lock:
                built = self._indexes.get(name)
            search = None if not can(cls, "items") else {
                "index": self.index_kind,
                "recall@10": None if built is None else json_safe(built.recall)}
            out.append({"method": name, "rank": rank, "items": can(cls, "items"),
                        "coldstart": can(cls, "coldstart") and can(cls, "items"),
                        "search": search, "leaderboard": json_safe(rows.get(name)),
                        "precomputed": sorted(kind for kind, m in list(self._lists)
                                              if m == name)})
        return out

    @cached_property
    def parameters_note(self) -> str:
        """How the run's parameters were chosen: the shipped tuned preset (with its budget),
        tuning in the run, or the defaults; read from the run's manifest once."""
        from embedlens.app.queries import MANIFEST

        try:
            manifest = read_json_object(self.run / MANIFEST, "run manifest")
        except EmbedlensError:  # one method's run, or an old one
            return "each method's own parameters (see its run.json)"
        meta = manifest.get("preset")
        if isinstance(meta, dict):
            from embedlens.app.presets import preset_note

            return preset_note({"meta": meta})
        if manifest.get("tune_trials") or manifest.get("tune_timeout"):
            from embedlens.app.tune import budget_text

            return ("every method tuned in the run on a validation split cut from train, "
                    f"{budget_text(manifest.get('tune_trials'), manifest.get('tune_timeout'))}")
        return "every method at its defaults"

    def defaults(self) -> dict[str, str | None]:
        """The method each kind of query uses when none is named."""
        pairs = (("similar", "similar"), ("recommend", "any"), ("coldstart", "coldstart"))
        return {key: self.able[need][0] if self.able[need] else None for key, need in pairs}

    def search(self, query: str, limit: int = 10) -> list[dict[str, Any]]:
        """Movies whose title contains ``query`` (case, year and a moved article forgiven),
        titles that start with it first, then the most rated."""
        _check_text("q", query)
        check_k(limit)
        form = normalize_title(query)
        if not form:
            raise DataError("q is empty: type part of a movie title.")
        ids = self.train.items.ids
        hits = [i for i, f in enumerate(self._forms) if form in f]
        hits.sort(key=lambda i: (not self._forms[i].startswith(form), -self.popularity[i]))
        return [self._movie(ids[i]) for i in hits[:limit]]

    def similar(self, item: str, method: str | None = None, k: int = 10) -> dict[str, Any]:
        """The ``k`` movies nearest to ``item`` (an id or a title) under ``method``."""
        _check_text("item", item)
        check_k(k)
        name = self.method_for(method, "similar")
        items = self._unit_items(name)
        key = items.resolve(item)
        at = items.positions(np.asarray([key]))
        lists = self._lists.get(("similar", name)) if k <= PRECOMPUTED_K else None
        if lists is not None:
            top, scores = lists.row(int(at[0]), k)
        else:
            top, scores = self._index(name).search(items.vectors[at[0]], k, at)
        return {"method": name, "item": self._movie(key), "neighbours": self._scored(
            items.ids[top], scores)}

    def looks_up(self, kind: str, method: str | None, k: int, item: str | None = None
                 ) -> bool:
        """Whether a ``kind`` query ("similar", "recommend") is answered from precomputed
        lists: they are there for its method, ``k`` is within them, and (similar) the movie
        is named by its id, not by a title to search for."""
        try:
            name = self.method_for(method, "similar" if kind == "similar" else "any")
        except EmbedlensError:  # the query itself reports it
            return False
        return (k <= PRECOMPUTED_K and (kind, name) in self._lists
                and (item is None or typed_int(item) is not None))

    def user_row(self, user: str) -> int:
        """The train row of a user id (as the dataset spells it)."""
        _check_text("user", user)
        number = typed_int(user)
        key: object = user if number is None else number
        ids = self.train.users.ids
        if isinstance(key, int) != np.issubdtype(ids.dtype, np.integer):
            row = -1  # an id of the other kind (text for numbers or numbers for text)
        else:
            row = self.train.users.position(key)
        if row < 0:
            raise UnknownNameError(f"Unknown user {user!r}: not in this run's train data.")
        return row

    def user(self, user: str) -> dict[str, Any]:
        """A user's train history, in the order of the train matrix."""
        row = self.user_row(user)
        x = self.train.ratings  # its pattern is the history (binary() would copy it all)
        cols = x.indices[x.indptr[row]:x.indptr[row + 1]]
        ids = self.train.items.ids
        return {"user": user, "history": [self._movie(ids[c]) for c in cols]}

    def recommend(self, user: str, method: str | None = None, k: int = 10) -> dict[str, Any]:
        """The ``k`` best movies for a user that are not in their train history; each marked
        ``held_out`` when it is one of the user's test movies (``None``: the test part is
        not known to this server)."""
        check_k(k)
        row = self.user_row(user)
        name = self.method_for(method, "any")
        ids = self.train.items.ids
        lists = self._lists.get(("recommend", name)) if k <= PRECOMPUTED_K else None
        if lists is not None:
            positions, scores = lists.row(row, k)
            found = zip(ids[positions].tolist(), scores.tolist(), strict=True)
        else:
            recs = self.model(name).recommend(self.train, [self.train.users.ids[row].item()], k,
                                              scorer=self._scorer(name))
            found = zip(recs["item_id"].to_list(), recs["score"].to_list(), strict=True)
        held = self._heldout
        test = None if held is None else set(ids[held.columns_of(row)].tolist())
        return {"method": name, "user": user, "recommendations": [
            {**self._movie(item), "rank": rank, "score": float(score),
             "held_out": None if test is None else item in test}
            for rank, (item, score) in enumerate(found, start=1)]}

    def coldstart(self, query: ColdStartQuery, method: str | None = None,
                  k: int = 10) -> dict[str, Any]:
        """Where a movie nobody has rated lands: its ``k`` nearest movies."""
        query = query.checked()
        check_k(k)
        name = self.method_for(method, "coldstart")
        model = self.model(name)
        if not (isinstance(model, ColdStart) and isinstance(model, ItemVectors)):
            raise DataError(f"{name} cannot place unseen movies; choose a method that can.")
        vector = model.coldstart(list(query.genres), list(query.tags), query.year,
                                 title=query.title)
        items = self._unit_items(name)
        unit = l2_normalize(np.asarray(vector, dtype=np.float32).reshape(1, -1))[0]
        if unit.size != items.dim:
            raise DataError(f"{name} placed the movie in {unit.size} dimensions, its movies "
                            f"have {items.dim}.")
        top, scores = self._index(name).search(unit, k)
        return {"method": name, "neighbours": self._scored(items.ids[top], scores)}

    def map(self, method: str | None = None) -> dict[str, Any]:
        """A 2-D layout of ``method``'s movies (UMAP or PCA, see
        :mod:`~embedlens.app.layout`; cached in the run folder), with each movie's title,
        main genre (its rarest) and train popularity; computed once per method."""
        name = self.method_for(method, "items")
        with self._lock:
            cached = self._maps.get(name)
        if cached is not None:
            return cached
        items = self._unit_items(name)
        xy, layout = cached_layout(self.dirs[name], items.vectors, self.layout)
        genre_of: dict[object, str] = {}
        if items.metadata is not None and "genres" in items.metadata.columns:
            genre_of = main_genre_of(items.metadata["item_id"].to_list(),
                                     items.metadata["genres"].to_list())
        position = {v: i for i, v in enumerate(self.train.items.ids.tolist())}
        ids = items.ids.tolist()
        out = {"method": name, "layout": layout,
               "x": xy[:, 0].round(5).tolist(), "y": xy[:, 1].round(5).tolist(),
               "id": ids, "title": [self.titles.get(i, "") for i in ids],
               "genre": [genre_of.get(i, "") for i in ids],
               "popularity": [int(self.popularity[position[i]]) if i in position else 0
                              for i in ids]}
        with self._lock:
            self._maps[name] = out
        return out

    # -- helpers --------------------------------------------------------------------------
    def _scored(self, ids: np.ndarray, scores: np.ndarray) -> list[dict[str, Any]]:
        return [{**self._movie(i), "score": float(v)}
                for i, v in zip(ids.tolist(), scores.tolist(), strict=True)]

    def _movie(self, item: Any) -> dict[str, Any]:
        item = item.item() if isinstance(item, np.generic) else item
        return {"id": item, "title": self.titles.get(item, "")}

    @cached_property
    def _heldout(self) -> HeldOut | None:
        """Each test user's held-out movies: saved with the run, or (runs made before it
        was) from splitting the run's dataset again, when it can be loaded."""
        run_dir = next(iter(self.dirs.values()))
        saved = load_heldout(run_dir)
        if saved is not None:
            return saved
        try:
            from embedlens.evaluation.splits import EvalSplit

            info = RunInfo.load(run_dir)
            split = EvalSplit.prepare(info.load_dataset(self.data_dir), info.protocol)
        except EmbedlensError:
            return None
        if not (np.array_equal(split.train.items.ids, self.train.items.ids)
                and np.array_equal(split.train.users.ids, self.train.users.ids)):
            return None  # not the split the run was trained on: no marks rather than wrong
        return HeldOut.of(split)


def served_app(service: RunService, threads: int = 1) -> Any:
    """The app ``embedlens serve`` runs over ``service``: every method loaded in the
    background, queries on ``threads`` threads, BLAS held to one thread (a query is one
    small product: more threads only wait)."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(1, "blas")
    return create_app(service, warm=True, workers=threads)


class JSON(JSONResponse):
    """A JSON answer encoded by orjson: 1.5 us for a top-10 list where the standard library
    takes 29 us, which at thousands of lookups a second is most of the server's time."""

    def render(self, content: Any) -> bytes:
        return dump_json(content)


def dump_json(content: Any) -> bytes:
    """``content`` as JSON (NaN, which JSON lacks, as null)."""
    return orjson.dumps(content, option=orjson.OPT_SERIALIZE_NUMPY)


#: The GET queries a precomputed list may answer, and the name of what each is about.
LOOKUPS = {"/api/similar": ("similar", "item"), "/api/recommend": ("recommend", "user")}


def lookup_answer(service: RunService, path: str, query_string: bytes) -> bytes | None:
    """The JSON answer to a GET of ``path`` (one of :data:`LOOKUPS`) when precomputed lists
    answer it; ``None`` for anything else: another method or ``k``, a title to search for,
    a value out of bounds, a repeated or malformed parameter, an unknown id. Those go
    through FastAPI's checks and the query itself, as every query does, so a lookup answers
    exactly what the route would."""
    kind, subject = LOOKUPS[path]
    # decoded as Starlette decodes it for the route
    pairs = parse_qsl(query_string.decode("latin-1"), keep_blank_values=True)
    fields = dict(pairs)
    if len(fields) != len(pairs):
        return None
    name, method, k_text = fields.get(subject), fields.get("method"), fields.get("k", "10")
    if not name or len(name) > MAX_TEXT or (method is not None and len(method) > MAX_TEXT):
        return None
    if not (len(k_text) <= 3 and k_text.isascii() and k_text.isdigit()
            and 1 <= int(k_text) <= MAX_K):
        return None
    k = int(k_text)
    if not service.looks_up(kind, method, k, name if kind == "similar" else None):
        return None
    try:
        found = (service.similar(name, method, k) if kind == "similar"
                 else service.recommend(name, method, k))
    except EmbedlensError:
        return None
    return dump_json(found)


class LookupShortcut:
    """The served ASGI app: precomputed lookups (:func:`lookup_answer`) are answered here,
    in front of FastAPI, whose telemetry check, middleware, routing, parameter checking and
    dependency solving took three times as long as the lookup itself; everything else
    passes on to the FastAPI ``app``."""

    def __init__(self, app: Any, service: RunService) -> None:
        self.app = app
        self.service = service

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if (scope["type"] == "http" and scope["method"] == "GET"
                and scope["path"] in LOOKUPS):
            try:
                body = lookup_answer(self.service, scope["path"], scope["query_string"])
            except Exception:
                body = None
            if body is not None:
                await send({"type": "http.response.start", "status": 200, "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode())]})
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)


def create_app(service: RunService, warm: bool = False, workers: int = 1) -> Any:
    """The ASGI application over ``service`` (FastAPI behind :class:`LookupShortcut`); with
    ``warm``, every method is loaded in a background thread once the server is up
    (``/api/methods`` says ``ready`` when done), so start-up is not held up by it and later
    first queries are not either. Queries run on ``workers`` threads, in arrival order."""
    import asyncio
    from concurrent.futures import ThreadPoolExecutor
    from contextlib import asynccontextmanager

    from fastapi import FastAPI, Query, Request
    from starlette.concurrency import run_in_threadpool

    # Why a small pool of its own: on the event loop itself a query (5 ms at 59k movies)
    # held up accepting and reading the other connections, and 50 clients connecting at
    # once waited up to 8 s for their first answer; in FastAPI's pool of 40 threads, each
    # calling a multi-threaded BLAS and numba, they waited seconds on each other. Here the
    # loop only does I/O and the queries queue first come, first served.
    pool = ThreadPoolExecutor(workers, thread_name_prefix="embedlens-query")

    async def answer(fn: Callable[..., Any], *args: Any) -> JSON:
        # precomputed lookups seldom get here (LookupShortcut answers them); the JSON
        # encoding runs in the pool too: for a long answer it is most of the work
        return await asyncio.get_running_loop().run_in_executor(
            pool, lambda: JSON(fn(*args)))

    @asynccontextmanager
    async def lifespan(_: Any) -> Any:
        if warm:
            threading.Thread(target=service.warm, name="embedlens-warm", daemon=True).start()
        yield
        pool.shutdown(wait=False, cancel_futures=True)

    # endpoints hand back JSON: the answers are plain JSON already, and FastAPI's
    # generic encoding of a returned dict costs more than computing most of them
    app = FastAPI(title="embedlens", description=f"Read-only API over the run {service.run}",
                  version="1", lifespan=lifespan)

    @app.exception_handler(UnknownNameError)
    async def _unknown(_: Request, exc: UnknownNameError) -> JSON:
        return JSON({"error": str(exc)}, status_code=404)

    @app.exception_handler(EmbedlensError)
    async def _bad(_: Request, exc: EmbedlensError) -> JSON:
        return JSON({"error": str(exc)}, status_code=400)

    page_html = explorer_page()

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def page() -> str:
        return page_html

    @app.get("/api/methods")
    async def methods() -> JSON:
        return JSON({"methods": service.methods(), "defaults": service.defaults(),
                     "parameters": service.parameters_note, "ready": service.ready.is_set()})

    @app.get("/api/search")
    async def search(q: str = Query(..., min_length=1, max_length=MAX_TEXT),
                     limit: int = Query(10, ge=1, le=MAX_K)) -> JSON:
        return await answer(lambda: {"movies": service.search(q, limit)})

    @app.get("/api/similar")
    async def similar(item: str = Query(..., min_length=1, max_length=MAX_TEXT),
                      method: str | None = Query(None, max_length=MAX_TEXT),
                      k: int = Query(10, ge=1, le=MAX_K)) -> JSON:
        return await answer(service.similar, item, method, k)

    @app.get("/api/recommend")
    async def recommend(user: str = Query(..., min_length=1, max_length=MAX_TEXT),
                        method: str | None = Query(None, max_length=MAX_TEXT),
                        k: int = Query(10, ge=1, le=MAX_K)) -> JSON:
        return await answer(service.recommend, user, method, k)

    @app.get("/api/users/{user}")
    async def user(user: str) -> JSON:
        return await answer(service.user, user)

    @app.post("/api/coldstart")
    async def coldstart(body: ColdStartBody) -> JSON:
        query = ColdStartQuery(tuple(body.genres), tuple(body.tags), body.year, body.title)
        return await answer(service.coldstart, query, body.method, body.k)

    @app.get("/api/map")
    async def layout(method: str | None = Query(None, max_length=MAX_TEXT)) -> JSON:
        # a layout not yet cached takes seconds to minutes (UMAP): not in the query pool,
        # so other queries are answered meanwhile
        return JSON(await run_in_threadpool(service.map, method))

    return LookupShortcut(app, service)
