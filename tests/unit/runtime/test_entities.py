"""Entity extraction for the graph: acronyms and gene-like tokens, capitalized phrases (not
sentence-initial single words), normalized to lower case; query candidates add n-grams."""

from __future__ import annotations

from rag_runtime.graph import extract_entities, query_candidates


def test_acronyms_and_gene_names() -> None:
    found = extract_entities("Mutations in BRCA1 and TP53 change DNA repair via IL-6.")
    assert {"brca1", "tp53", "dna", "il-6"} <= set(found)


def test_capitalized_phrases_but_not_sentence_starts() -> None:
    found = extract_entities("Researchers at Johns Hopkins University met in Paris.")
    assert "johns hopkins university" in found
    assert "paris" in found
    assert "researchers" not in found


def test_stopwords_are_not_entities() -> None:
    assert extract_entities("The. However, This is it.") == []


def test_query_candidates_include_lowercase_ngrams() -> None:
    candidates = query_candidates("what does brca1 do in breast cancer")
    assert {"brca1", "breast cancer", "breast"} <= set(candidates)
    assert "what" in candidates
    assert "does brca1 do" in candidates
