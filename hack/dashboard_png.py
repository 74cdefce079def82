"""Draw the ragops dashboard's panels from a real Prometheus and screenshot them (no Grafana).

Every panel of `hack.dashboards` is queried over a recent window (`query_range`, Grafana's
variables given concrete values) and drawn as an SVG chart (time series) or a big number
(stat) on one HTML page, which headless Chromium turns into a PNG.

    python -m hack.dashboard_png --prometheus URL --namespace NS --ragsystem NAME \\
        [--minutes 15] [--out /tmp/dashboard.png]

`panel_data()` is what the end-to-end test checks: each panel's series, by query.
"""

from __future__ import annotations

import argparse
import html
import json
import re
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from hack import dashboards

COLORS = ("#7eb26d", "#eab839", "#6ed0e0", "#ef843c", "#e24d42", "#1f78c1", "#ba43a9", "#705da0")
PANEL_W, PANEL_H = 520, 230


@dataclass(frozen=True)
class Series:
    legend: str
    points: tuple[tuple[float, float], ...]


@dataclass(frozen=True)
class PanelData:
    row: str
    title: str
    kind: str
    unit: str
    width: int
    series: tuple[Series, ...]
    queries: tuple[str, ...]


def _legend(template: str, labels: dict[str, str]) -> str:
    text = re.sub(r"\{\{\s*(\w+)\s*\}\}", lambda m: labels.get(m.group(1), ""), template)
    return text.strip() or json.dumps(labels, sort_keys=True)


def query_range(prometheus: str, expr: str, start: float, end: float) -> list[dict[str, Any]]:
    step = max(1.0, (end - start) / 150)
    resp = httpx.get(
        f"{prometheus}/api/v1/query_range",
        params={"query": expr, "start": start, "end": end, "step": step},
        timeout=30,
    )
    body = resp.json()
    if body.get("status") != "success":
        raise RuntimeError(f"query failed: {expr}: {body.get('error')}")
    result: list[dict[str, Any]] = body["data"]["result"]
    return result


def panel_data(
    prometheus: str, namespace: str, ragsystem: str, minutes: float = 15
) -> list[PanelData]:
    """Each panel's series over the last `minutes`, queried as Grafana would."""
    values = {"namespace": namespace, "ragsystem": ragsystem, "__rate_interval": "1m"}
    end = time.time()
    start = end - minutes * 60
    out = []
    for row, panels in dashboards.ROWS:
        for panel in panels:
            series: list[Series] = []
            exprs = []
            for query in panel.queries:
                expr = dashboards.concrete(query.expr, values)
                exprs.append(expr)
                for item in query_range(prometheus, expr, start, end):
                    points = tuple(
                        (float(t), float(v))
                        for t, v in item["values"]
                        if v not in ("NaN", "+Inf", "-Inf")
                    )
                    if points:
                        series.append(Series(_legend(query.legend, item["metric"]), points))
            out.append(
                PanelData(
                    row,
                    panel.title,
                    panel.kind,
                    panel.unit,
                    panel.width,
                    tuple(series),
                    tuple(exprs),
                )
            )
    return out


def _fmt(value: float, unit: str) -> str:
    if unit == "percentunit":
        return f"{value * 100:.1f}%"
    if unit == "percent":
        return f"{value:.0f}%"
    if unit == "s":
        return f"{value * 1000:.0f} ms" if abs(value) < 1 else f"{value:.2f} s"
    if unit in ("reqps", "ops"):
        return f"{value:.2f}/s"
    return f"{value:.4g}"


def _svg(panel: PanelData, width: int) -> str:
    if not panel.series:
        return '<div class="nodata">No data</div>'
    if panel.kind == "stat":
        last = [(s.legend, s.points[-1][1]) for s in panel.series]
        cells = "".join(
            f'<div class="stat"><b>{html.escape(_fmt(v, panel.unit))}</b>'
            f"<span>{html.escape(name)}</span></div>"
            for name, v in last
        )
        return f'<div class="stats">{cells}</div>'
    h, left, bottom = PANEL_H - 70, 60, 18
    xs = [t for s in panel.series for t, _ in s.points]
    ys = [v for s in panel.series for _, v in s.points]
    x0, x1 = min(xs), max(max(xs), min(xs) + 1)
    y0, y1 = min(0.0, min(ys)), max(ys) if max(ys) > min(0.0, min(ys)) else min(0.0, min(ys)) + 1
    plot_w = width - left - 10

    def px(t: float) -> float:
        return left + (t - x0) / (x1 - x0) * plot_w

    def py(v: float) -> float:
        return 5 + (1 - (v - y0) / (y1 - y0)) * (h - bottom)

    parts = [f'<svg width="{width}" height="{h}" xmlns="http://www.w3.org/2000/svg">']
    for frac in (0.0, 0.5, 1.0):
        v = y0 + frac * (y1 - y0)
        parts.append(
            f'<line x1="{left}" x2="{width - 10}" y1="{py(v):.1f}" y2="{py(v):.1f}" '
            'stroke="#333"/>'
            f'<text x="{left - 4}" y="{py(v) + 4:.1f}" text-anchor="end">'
            f"{html.escape(_fmt(v, panel.unit))}</text>"
        )
    for i, ts in enumerate((x0, x1)):
        label = time.strftime("%H:%M:%S", time.gmtime(ts))
        anchor = "start" if i == 0 else "end"
        parts.append(f'<text x="{px(ts):.1f}" y="{h - 2}" text-anchor="{anchor}">{label}</text>')
    for i, s in enumerate(panel.series):
        color = COLORS[i % len(COLORS)]
        pts = " ".join(f"{px(t):.1f},{py(v):.1f}" for t, v in s.points)
        parts.append(f'<polyline fill="none" stroke="{color}" stroke-width="2" points="{pts}"/>')
    parts.append("</svg>")
    legend = "".join(
        f'<span><i style="background:{COLORS[i % len(COLORS)]}"></i>{html.escape(s.legend)}</span>'
        for i, s in enumerate(panel.series[:8])
    )
    return "".join(parts) + f'<div class="legend">{legend}</div>'


STYLE = """
body{background:#111217;color:#ccccdc;font:13px sans-serif;margin:12px;width:1576px}
h1{font-size:18px;margin:4px 0 8px} h2{font-size:15px;margin:14px 0 6px;color:#fff}
.row{display:flex;flex-wrap:wrap;gap:8px}
.panel{background:#181b1f;border:1px solid #2c3235;border-radius:3px;padding:6px 8px;
height:230px;box-sizing:border-box;overflow:hidden}
.panel h3{font-size:13px;margin:0 0 4px;color:#fff}
svg text{fill:#8e8e8e;font-size:10px}
.legend span{margin-right:10px;font-size:11px}
.legend i{display:inline-block;width:10px;height:3px;margin-right:4px;vertical-align:middle}
.nodata{color:#e24d42;padding-top:70px;text-align:center;font-size:16px}
.stats{display:flex;gap:20px;justify-content:center;padding-top:50px}
.stat{text-align:center} .stat b{display:block;font-size:40px;color:#73bf69}
"""


def page(panels: list[PanelData], title: str) -> str:
    body = [f"<h1>{html.escape(title)}</h1>"]
    row_name = None
    for p in panels:
        if p.row != row_name:
            if row_name is not None:
                body.append("</div>")
            body.append(f'<h2>{html.escape(p.row)}</h2><div class="row">')
            row_name = p.row
        width = int(1576 * p.width / 24) - 8
        body.append(
            f'<div class="panel" style="width:{width}px"><h3>{html.escape(p.title)}</h3>'
            f"{_svg(p, width - 18)}</div>"
        )
    body.append("</div>")
    head = f"<!doctype html><html><head><style>{STYLE}</style></head>"
    return f"{head}<body>{''.join(body)}</body></html>"


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    raise RuntimeError("chromium is not installed (apt-get install chromium)")


def screenshot(html_text: str, out: Path, height: int) -> Path:
    with tempfile.TemporaryDirectory(prefix="ragops-dashboard-") as tmp:
        page_path = Path(tmp) / "dashboard.html"
        page_path.write_text(html_text)
        argv = [
            chromium(),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            f"--user-data-dir={tmp}/profile",
            f"--window-size=1600,{height}",
            f"--screenshot={out}",
            page_path.as_uri(),
        ]
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=180, check=False)
        if proc.returncode != 0 or not out.exists():
            raise RuntimeError(f"chromium failed ({proc.returncode}): {proc.stderr[-2000:]}")
    return out


def render_png(
    prometheus: str, namespace: str, ragsystem: str, out: Path, minutes: float = 15
) -> tuple[Path, list[PanelData]]:
    panels = panel_data(prometheus, namespace, ragsystem, minutes)
    rows = len(dashboards.ROWS)
    lines = sum(max(1, -(-sum(p.width for p in r) // 24)) for _, r in dashboards.ROWS)
    height = 60 + rows * 40 + lines * 238
    title = f"ragops: RagSystem {namespace}/{ragsystem} (last {minutes:g} min, from Prometheus)"
    return screenshot(page(panels, title), out, height), panels


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prometheus", required=True)
    parser.add_argument("--namespace", required=True)
    parser.add_argument("--ragsystem", required=True)
    parser.add_argument("--minutes", type=float, default=15)
    parser.add_argument("--out", type=Path, default=Path("/tmp/dashboard.png"))
    args = parser.parse_args(argv)
    path, panels = render_png(
        args.prometheus, args.namespace, args.ragsystem, args.out, args.minutes
    )
    empty = [p.title for p in panels if not p.series]
    print(json.dumps({"png": str(path), "panels": len(panels), "without_data": empty}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
