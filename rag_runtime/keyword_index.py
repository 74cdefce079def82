"""In-memory inverted index of one collection's postings, for exact BM25 top-k in milliseconds.

Postgres stays the source of truth (the `postings` table, term statistics and a versioned
change log, see migration 0002). An API process loads a collection's postings once, then
catches up by applying only the chunks added and removed after its version. Scoring sums,
for every query term, the BM25 contribution of each of its postings into one array (numpy),
so the result is exhaustive BM25, not an approximation.

Layout: chunks live in slots (arrays of chunk id, length, alive flag); postings live in
segments, each sorted by term (CSR: term ids, offsets, slots, term frequencies). New chunks
arrive as small segments that are merged into one once there are several.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from rag_runtime.keyword import K1, B

MAX_SEGMENTS = 8
TIE_DECIMALS = 9
I64 = npt.NDArray[np.int64]


@dataclass(frozen=True)
class Segment:
    terms: I64  # sorted unique term ids
    offsets: I64  # postings of terms[i] are [offsets[i], offsets[i + 1])
    slots: npt.NDArray[np.int32]
    tfs: npt.NDArray[np.uint16]  # tsvector keeps at most 256 positions per lexeme

    @staticmethod
    def build(term_ids: I64, slots: npt.NDArray[np.int32], tfs: npt.NDArray[np.generic]) -> Segment:
        """Sorted by term, then slot (so membership of a slot in a term is a binary search)."""
        if len(term_ids) and int(term_ids.max()) < 2**31 and int(term_ids.min()) >= 0:
            order = np.argsort((term_ids << 32) | slots.astype(np.int64))
        else:
            order = np.lexsort((slots, term_ids))
        terms_sorted = term_ids[order]
        terms, starts = np.unique(terms_sorted, return_index=True)
        offsets = np.append(starts, len(terms_sorted)).astype(np.int64)
        tf16 = np.minimum(tfs[order], np.iinfo(np.uint16).max).astype(np.uint16)
        return Segment(terms.astype(np.int64), offsets, slots[order], tf16)

    def postings(self, term_id: int) -> tuple[npt.NDArray[np.int32], npt.NDArray[np.uint16]]:
        i = int(np.searchsorted(self.terms, term_id))
        if i == len(self.terms) or self.terms[i] != term_id:
            return np.empty(0, np.int32), np.empty(0, np.uint16)
        lo, hi = int(self.offsets[i]), int(self.offsets[i + 1])
        return self.slots[lo:hi], self.tfs[lo:hi]

    def __len__(self) -> int:
        return len(self.slots)

    @property
    def nbytes(self) -> int:
        return self.terms.nbytes + self.offsets.nbytes + self.slots.nbytes + self.tfs.nbytes


@dataclass(frozen=True)
class Ranked:
    chunk_id: int
    score: float
    term_ids: list[int]


@dataclass
class KeywordIndex:
    """Postings of one collection as of `version`."""

    version: int = -1
    loaded_version: int = -1  # the version it was loaded at from scratch (catch-ups keep it)
    chunk_ids: I64 = field(default_factory=lambda: np.empty(0, np.int64))
    lengths: npt.NDArray[np.float64] = field(default_factory=lambda: np.empty(0, np.float64))
    alive: npt.NDArray[np.bool_] = field(default_factory=lambda: np.empty(0, np.bool_))
    segments: list[Segment] = field(default_factory=list)

    @property
    def postings(self) -> int:
        return sum(len(s) for s in self.segments)

    @property
    def nbytes(self) -> int:
        """Memory the index's arrays hold."""
        arrays = self.chunk_ids.nbytes + self.lengths.nbytes + self.alive.nbytes
        return arrays + sum(s.nbytes for s in self.segments)

    @property
    def live_chunks(self) -> int:
        return int(self.alive.sum())

    def apply(
        self,
        version: int,
        *,
        chunk_ids: I64,
        lengths: npt.NDArray[np.float64],
        posting_chunks: I64,
        posting_terms: I64,
        posting_tfs: npt.NDArray[np.generic],
        removed: I64,
    ) -> None:
        """Add chunks (with their postings) and remove chunks, moving to `version`."""
        if self.version < 0:
            self.loaded_version = version
        if len(removed):
            self.alive[np.isin(self.chunk_ids, removed)] = False
        if len(chunk_ids):
            first_slot = len(self.chunk_ids)
            order = np.argsort(chunk_ids)
            positions = np.searchsorted(chunk_ids[order], posting_chunks)
            if len(posting_chunks) and not np.array_equal(
                chunk_ids[order][np.minimum(positions, len(chunk_ids) - 1)], posting_chunks
            ):
                raise ValueError("postings refer to chunks that were not loaded with them")
            slots = (first_slot + order[positions]).astype(np.int32)
            self.chunk_ids = np.concatenate([self.chunk_ids, chunk_ids])
            self.lengths = np.concatenate([self.lengths, lengths])
            self.alive = np.concatenate([self.alive, np.ones(len(chunk_ids), np.bool_)])
            self.segments.append(Segment.build(posting_terms, slots, posting_tfs))
            if len(self.segments) > MAX_SEGMENTS:
                self._merge()
        self.version = version

    def _merge(self) -> None:
        """One segment from all, without the postings of removed chunks."""
        slots = np.concatenate([s.slots for s in self.segments])
        tfs = np.concatenate([s.tfs for s in self.segments])
        terms = np.concatenate([np.repeat(s.terms, np.diff(s.offsets)) for s in self.segments])
        keep = self.alive[slots]
        self.segments = [Segment.build(terms[keep], slots[keep], tfs[keep])]

    def dead_fraction(self) -> float:
        return 0.0 if not len(self.alive) else 1.0 - self.live_chunks / len(self.alive)

    def scores(self, terms: Sequence[tuple[int, float]], avgdl: float) -> npt.NDArray[np.float64]:
        """BM25 of every slot for (term id, idf) pairs; 0 where no term matches or removed."""
        parts: list[npt.NDArray[np.int32]] = []
        weights: list[npt.NDArray[np.float64]] = []
        norm = K1 * (1 - B + B * self.lengths / avgdl)
        for segment in self.segments:
            for term_id, idf in terms:
                slots, tfs = segment.postings(term_id)
                if len(slots):
                    parts.append(slots)
                    tf = tfs.astype(np.float64)
                    weights.append(idf * tf * (K1 + 1) / (tf + norm[slots]))
        if not parts:
            return np.zeros(len(self.chunk_ids))
        acc: npt.NDArray[np.float64] = np.bincount(
            np.concatenate(parts), weights=np.concatenate(weights), minlength=len(self.chunk_ids)
        ).astype(np.float64, copy=False)
        acc[~self.alive] = 0.0
        return acc

    def ranked(
        self, terms: Sequence[tuple[int, float]], avgdl: float, limit: int | None
    ) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.float64]]:
        """Slots of matching chunks by score (ties by chunk id), at most `limit`, and scores.

        Scores equal to 9 decimals count as ties: summing in another order must not reorder.
        """
        acc = self.scores(terms, avgdl)
        matched = np.flatnonzero(acc > 0)
        key = np.round(acc[matched], TIE_DECIMALS)
        if limit is not None and len(matched) > limit:
            # Everything scoring at least the limit-th best, so ties are broken by id below.
            kth = np.partition(key, len(matched) - limit)[len(matched) - limit]
            keep = key >= kth
            matched, key = matched[keep], key[keep]
        order = np.lexsort((self.chunk_ids[matched], -key))
        top = matched[order[:limit] if limit is not None else order]
        return top, acc[top]

    def describe(
        self,
        slots: npt.NDArray[np.intp],
        scores: npt.NDArray[np.float64],
        terms: Sequence[tuple[int, float]],
    ) -> list[Ranked]:
        """Chunk ids, scores and the matching term ids of ranked slots."""
        matched: list[list[int]] = [[] for _ in slots]
        for term_id, _ in terms:
            hit = np.zeros(len(slots), np.bool_)
            for segment in self.segments:
                term_slots, _tfs = segment.postings(term_id)
                if len(term_slots):
                    at = np.minimum(np.searchsorted(term_slots, slots), len(term_slots) - 1)
                    hit |= term_slots[at] == slots
            for i in np.flatnonzero(hit):
                matched[i].append(term_id)
        return [
            Ranked(int(self.chunk_ids[s]), float(sc), m)
            for s, sc, m in zip(slots, scores, matched, strict=True)
        ]
