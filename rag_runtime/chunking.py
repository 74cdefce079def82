"""Split text into chunks that fit the embedding model's token limit, with overlap.

Sentences are packed whole while they fit; a sentence longer than a chunk is cut at word
boundaries. Consecutive chunks share about `overlap` tokens of trailing sentences (or words).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[\"'(\[A-Z0-9])|\n\s*\n")
_WORD = re.compile(r"\S+")

TokenCounter = Callable[[list[str]], list[int]]


@dataclass(frozen=True)
class Chunk:
    ordinal: int
    text: str
    tokens: int


def split_sentences(text: str) -> list[str]:
    parts = [p.strip() for p in _SENTENCE_END.split(text)]
    return [p for p in parts if p]


@dataclass(frozen=True)
class Chunker:
    count_tokens: TokenCounter
    max_tokens: int
    overlap: int = 32

    def __post_init__(self) -> None:
        if self.max_tokens < 8:
            raise ValueError("max_tokens must be at least 8")
        if self.overlap >= self.max_tokens // 2:
            object.__setattr__(self, "overlap", self.max_tokens // 4)

    def split(self, text: str) -> list[Chunk]:
        pieces = self._pieces(text)
        chunks: list[Chunk] = []
        current: list[tuple[str, int]] = []
        size = 0
        for piece, tokens in pieces:
            if current and size + tokens > self.max_tokens:
                chunks.append(self._make(len(chunks), current))
                current = self._tail(current)
                size = sum(t for _, t in current)
                if size + tokens > self.max_tokens:
                    current, size = [], 0
            current.append((piece, tokens))
            size += tokens
        if current:
            chunks.append(self._make(len(chunks), current))
        return chunks

    def _make(self, ordinal: int, parts: list[tuple[str, int]]) -> Chunk:
        return Chunk(ordinal, " ".join(p for p, _ in parts), sum(t for _, t in parts))

    def _tail(self, parts: list[tuple[str, int]]) -> list[tuple[str, int]]:
        """Trailing pieces worth up to `overlap` tokens, carried into the next chunk."""
        tail: list[tuple[str, int]] = []
        size = 0
        for piece, tokens in reversed(parts):
            if size + tokens > self.overlap:
                break
            tail.insert(0, (piece, tokens))
            size += tokens
        return tail

    def _pieces(self, text: str) -> list[tuple[str, int]]:
        """Sentences with their token counts; over-long sentences become word windows."""
        sentences = split_sentences(text)
        if not sentences:
            return []
        counts = self.count_tokens(sentences)
        out: list[tuple[str, int]] = []
        for sentence, tokens in zip(sentences, counts, strict=True):
            if tokens <= self.max_tokens:
                out.append((sentence, tokens))
            else:
                out.extend(self._word_pieces(sentence))
        return out

    def _word_pieces(self, sentence: str) -> list[tuple[str, int]]:
        words = _WORD.findall(sentence)
        counts = self.count_tokens(words)
        out: list[tuple[str, int]] = []
        step = max(1, self.overlap // 2)  # group words into small pieces for fine overlap
        group: list[str] = []
        group_tokens = 0
        for word, tokens in zip(words, counts, strict=True):
            tokens = min(tokens, self.max_tokens)
            if group and (group_tokens + tokens > step):
                out.append((" ".join(group), group_tokens))
                group, group_tokens = [], 0
            group.append(word if tokens < self.max_tokens else word[: self.max_tokens])
            group_tokens += tokens
        if group:
            out.append((" ".join(group), group_tokens))
        return out
