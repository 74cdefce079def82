"""Which program runs for which image, and how command/args combine with the image's.

Aspects covered:
- image references normalise as Docker Hub's (``redis:7`` is ``docker.io/library/redis:7``);
  malformed references are refused;
- the built-in table maps the runtime, pgvector, redis, neo4j, python and busybox images, and
  refuses any other image with a message naming it and what is mapped;
- ``command`` replaces ENTRYPOINT and ``args`` replace CMD;
- extra entries (images.json) are checked first and derive from a built-in profile; bad extra
  entries are refused with the entry named.
"""

from __future__ import annotations

import pytest

from hack.node_agent.images import ImageError, ImageProfile, builtin_table, parse_image


@pytest.mark.parametrize(
    ("ref", "repository", "tag"),
    [
        ("redis:7.4-alpine", "docker.io/library/redis", "7.4-alpine"),
        ("pgvector/pgvector:pg17", "docker.io/pgvector/pgvector", "pg17"),
        ("ghcr.io/ragops/rag-runtime:0.1.0", "ghcr.io/ragops/rag-runtime", "0.1.0"),
        ("localhost:5000/app", "localhost:5000/app", "latest"),
        ("busybox", "docker.io/library/busybox", "latest"),
    ],
)
def test_references_normalise(ref: str, repository: str, tag: str) -> None:
    parsed = parse_image(ref)
    assert (parsed.repository, parsed.tag) == (repository, tag)


@pytest.mark.parametrize("ref", ["", "has space:1", "Upper/Case:1"])
def test_malformed_references_are_refused(ref: str) -> None:
    with pytest.raises(ImageError, match="invalid image reference"):
        parse_image(ref)


@pytest.mark.parametrize(
    ("image", "profile"),
    [
        ("ghcr.io/ragops/rag-runtime:0.2.0", "rag-runtime"),
        ("pgvector/pgvector:pg17", "postgres"),
        ("docker.io/library/postgres:18", "postgres"),
        ("redis:7.4-alpine", "redis"),
        ("neo4j:5.26-community", "neo4j"),
        ("python:3.11", "python"),
        ("busybox:1.36", "busybox"),
    ],
)
def test_builtin_table_maps_the_projects_images(image: str, profile: str) -> None:
    assert builtin_table().resolve(image).name == profile


def test_unmapped_image_is_refused_with_what_is_mapped() -> None:
    with pytest.raises(ImageError) as exc:
        builtin_table().resolve("quay.io/someone/thing:1")
    assert "quay.io/someone/thing:1" in str(exc.value)
    assert "pgvector/pgvector:*" in str(exc.value)


@pytest.mark.parametrize(
    ("command", "args", "argv"),
    [
        ([], [], ["rag-runtime", "serve"]),
        ([], ["worker"], ["rag-runtime", "worker"]),
        (["rag-runtime"], ["migrate"], ["rag-runtime", "migrate"]),
        (["python", "-V"], [], ["python", "-V"]),
    ],
)
def test_command_replaces_entrypoint_and_args_replace_cmd(
    command: list[str], args: list[str], argv: list[str]
) -> None:
    profile = ImageProfile(name="x", entrypoint=("rag-runtime",), cmd=("serve",))
    assert profile.argv(command, args) == argv


def test_runtime_profile_is_the_dockerfiles() -> None:
    runtime = builtin_table().resolve("ghcr.io/ragops/rag-runtime:0.1.0")
    assert runtime.user == 10001
    assert runtime.workdir == "/var/lib/rag"
    assert runtime.env["RAG_HOST"] == "0.0.0.0"
    assert runtime.env["HF_HUB_OFFLINE"] == "1"
    assert runtime.env["PATH"].split(":")[0].endswith("/.venv/bin")


def test_extra_entries_come_first_and_derive_from_a_builtin() -> None:
    table = builtin_table().with_extras(
        [
            {
                "image": "ghcr.io/ragops/rag-runtime:*-faulty",
                "base": "rag-runtime",
                "env": {"RAG_FAULT": "errors"},
            },
        ]
    )
    faulty = table.resolve("ghcr.io/ragops/rag-runtime:0.2.0-faulty")
    assert faulty.env["RAG_FAULT"] == "errors"
    assert faulty.user == 10001
    assert faulty.entrypoint == ("rag-runtime",)
    assert "RAG_FAULT" not in table.resolve("ghcr.io/ragops/rag-runtime:0.2.0").env


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"base": "python"}, "extra image entry 0: 'image' must be a non-empty string"),
        ({"image": "x:*", "base": "nope"}, "no image profile named 'nope'"),
        ({"image": "x:*", "base": "python", "env": {"A": 1}}, "'env' must map names to strings"),
        ({"image": "x:*", "base": "python", "cmd": "sh"}, "'cmd' must be a list of strings"),
    ],
)
def test_bad_extra_entries_are_refused(entry: dict[str, object], message: str) -> None:
    with pytest.raises(ImageError, match=message):
        builtin_table().with_extras([entry])
