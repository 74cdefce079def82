"""Every value of the chart is documented.

Aspects covered: each value in values.yaml has a node with a description in
values.schema.json; the schema declares no value that values.yaml lacks; the README's values
table is exactly what hack.chart_docs renders from the two (so it lists every value).
"""

from __future__ import annotations

from typing import Any

from hack import chart_docs


def schema_leaves(node: dict[str, Any], path: str = "") -> list[str]:
    props = node.get("properties")
    if props is None:
        return [path]
    out = []
    for key, child in props.items():
        out.extend(schema_leaves(child, f"{path}.{key}" if path else key))
    return out


def test_every_value_has_a_description_in_the_schema() -> None:
    missing = [
        path for path, _, node in chart_docs.documented() if not (node or {}).get("description")
    ]
    assert not missing, f"values without a schema description: {missing}"


def test_the_schema_declares_only_values_that_exist() -> None:
    in_values = {path for path, _, _ in chart_docs.documented()}
    declared = set(schema_leaves(chart_docs.schema())) - {"global"}
    assert declared == in_values, (sorted(declared - in_values), sorted(in_values - declared))


def test_readme_table_is_rendered_from_the_schema() -> None:
    text = chart_docs.README.read_text()
    assert chart_docs.render_readme(text) == text, "run make examples"
    for path, _, _ in chart_docs.documented():
        assert f"| `{path}` |" in text
