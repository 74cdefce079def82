"""Answers from retrieved chunks: OpenAI, Anthropic (official SDKs) or extractive.

Prompts number the passages [1]..[n]; citations are the [n] markers the answer uses that
point to a returned chunk.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Protocol

from rag_runtime.domain import GenerationProvider
from rag_runtime.errors import ServiceUnavailableError
from rag_runtime.schemas import Citation, SearchHit
from rag_runtime.settings import Settings

SYSTEM_PROMPT = (
    "Answer the question using only the numbered passages. Cite every claim with the "
    "passage number in square brackets, like [1]. If the passages do not contain the answer, "
    "say that you do not know."
)
_CITATION = re.compile(r"\[(\d{1,3})\]")
_SENTENCE = re.compile(r"(?<=[.!?])\s+")
_WORD = re.compile(r"[a-z0-9]+")
MAX_CONTEXT_CHARS = 2000


def build_prompt(question: str, hits: list[SearchHit]) -> str:
    passages = "\n\n".join(
        f"[{i}] {h.document_title + ': ' if h.document_title else ''}{h.text[:MAX_CONTEXT_CHARS]}"
        for i, h in enumerate(hits, start=1)
    )
    return f"Passages:\n\n{passages}\n\nQuestion: {question}"


def citations_in(answer: str, hits: list[SearchHit]) -> list[Citation]:
    seen: dict[int, Citation] = {}
    for match in _CITATION.finditer(answer):
        index = int(match.group(1))
        if 1 <= index <= len(hits) and index not in seen:
            hit = hits[index - 1]
            seen[index] = Citation(index=index, chunk_id=hit.chunk_id, document_id=hit.document_id)
    return list(seen.values())


class Generator(Protocol):
    provider: str
    model: str

    def stream(
        self, question: str, hits: list[SearchHit], max_tokens: int
    ) -> AsyncIterator[str]: ...

    async def close(self) -> None: ...


@dataclass
class ExtractiveGenerator:
    """No LLM: the passage sentences that share most words with the question, cited."""

    provider: str = "extractive"
    model: str = "extractive"
    max_sentences: int = 3

    async def stream(
        self, question: str, hits: list[SearchHit], max_tokens: int
    ) -> AsyncIterator[str]:
        terms = set(_WORD.findall(question.lower()))
        scored: list[tuple[float, int, int, str]] = []
        for i, hit in enumerate(hits, start=1):
            for j, sentence in enumerate(_SENTENCE.split(hit.text)):
                words = set(_WORD.findall(sentence.lower()))
                if not words:
                    continue
                overlap = len(terms & words) / (len(terms) or 1)
                scored.append((overlap + 0.1 / i, i, j, sentence.strip()))
        relevant = [s for s in scored if s[0] >= 0.1 / s[1] + 1e-9 and s[0] - 0.1 / s[1] > 0]
        if not relevant:
            yield "I could not find anything about that in the collection."
            return
        best = sorted(relevant, key=lambda s: -s[0])[: self.max_sentences]
        best.sort(key=lambda s: (s[1], s[2]))
        parts = [f"{sentence} [{i}]" for _, i, _, sentence in best]
        for n, part in enumerate(parts):
            yield part if n == 0 else " " + part

    async def close(self) -> None:
        return None


@dataclass
class OpenAIGenerator:
    client: Any
    model: str
    provider: str = "openai"

    async def stream(
        self, question: str, hits: list[SearchHit], max_tokens: int
    ) -> AsyncIterator[str]:
        import openai

        try:
            response = await self.client.chat.completions.create(
                model=self.model,
                messages=[
                    {"role": "system", "content": SYSTEM_PROMPT},
                    {"role": "user", "content": build_prompt(question, hits)},
                ],
                max_tokens=max_tokens,
                stream=True,
            )
            async for event in response:
                for choice in event.choices:
                    if choice.delta and choice.delta.content:
                        yield choice.delta.content
        except openai.APIConnectionError as exc:
            raise ServiceUnavailableError("generation provider unreachable", cause=exc) from exc
        except openai.APIStatusError as exc:
            raise ServiceUnavailableError(
                f"generation provider error {exc.status_code}", cause=exc.message
            ) from exc

    async def close(self) -> None:
        await self.client.close()


@dataclass
class AnthropicGenerator:
    client: Any
    model: str
    provider: str = "anthropic"

    async def stream(
        self, question: str, hits: list[SearchHit], max_tokens: int
    ) -> AsyncIterator[str]:
        import anthropic

        try:
            async with self.client.messages.stream(
                model=self.model,
                system=SYSTEM_PROMPT,
                messages=[{"role": "user", "content": build_prompt(question, hits)}],
                max_tokens=max_tokens,
            ) as stream:
                async for text in stream.text_stream:
                    yield text
        except anthropic.APIConnectionError as exc:
            raise ServiceUnavailableError("generation provider unreachable", cause=exc) from exc
        except anthropic.APIStatusError as exc:
            raise ServiceUnavailableError(
                f"generation provider error {exc.status_code}", cause=exc.message
            ) from exc

    async def close(self) -> None:
        await self.client.close()


def build_generator(settings: Settings) -> Generator:
    provider = settings.generation_provider
    if provider is GenerationProvider.OPENAI:
        import openai

        key = settings.openai_api_key.get_secret_value() if settings.openai_api_key else None
        return OpenAIGenerator(
            client=openai.AsyncOpenAI(
                api_key=key, base_url=settings.openai_base_url, max_retries=1
            ),
            model=settings.generation_model or "gpt-4o-mini",
        )
    if provider is GenerationProvider.ANTHROPIC:
        import anthropic

        key = settings.anthropic_api_key.get_secret_value() if settings.anthropic_api_key else None
        return AnthropicGenerator(
            client=anthropic.AsyncAnthropic(
                api_key=key, base_url=settings.anthropic_base_url, max_retries=1
            ),
            model=settings.generation_model or "claude-3-5-haiku-latest",
        )
    return ExtractiveGenerator()
