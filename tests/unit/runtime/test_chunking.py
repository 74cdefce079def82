"""Chunking: chunks stay within the token limit, neighbours overlap, sentences stay whole when
they fit, an over-long sentence is cut at words, and empty text gives no chunks."""

from __future__ import annotations

import itertools

from rag_runtime.chunking import Chunker, split_sentences


def words(texts: list[str]) -> list[int]:
    return [len(t.split()) for t in texts]


def test_short_text_is_one_chunk() -> None:
    chunks = Chunker(words, max_tokens=50).split("One sentence. Another one.")
    assert [c.text for c in chunks] == ["One sentence. Another one."]


def test_chunks_respect_the_token_limit_and_overlap() -> None:
    text = " ".join(f"Sentence {i} has exactly six words." for i in range(40))
    chunks = Chunker(words, max_tokens=30, overlap=6).split(text)
    assert len(chunks) > 5
    assert all(c.tokens <= 30 for c in chunks)
    for a, b in itertools.pairwise(chunks):
        assert a.text.split(". ")[-1].rstrip(".") in b.text  # last sentence carried over


def test_long_sentence_is_cut_at_words() -> None:
    text = " ".join(f"w{i}" for i in range(100))
    chunks = Chunker(words, max_tokens=20, overlap=4).split(text)
    assert all(c.tokens <= 20 for c in chunks)
    covered = {w for c in chunks for w in c.text.split()}
    assert covered == set(text.split())


def test_empty_text_gives_no_chunks() -> None:
    assert Chunker(words, max_tokens=20).split("  \n ") == []


def test_ordinals_are_sequential() -> None:
    text = " ".join(f"Sentence {i} is here." for i in range(30))
    chunks = Chunker(words, max_tokens=12, overlap=0).split(text)
    assert [c.ordinal for c in chunks] == list(range(len(chunks)))


def test_sentences_split_on_end_marks_and_blank_lines() -> None:
    assert split_sentences("A b. C d! E f?\n\nG h") == ["A b.", "C d!", "E f?", "G h"]
