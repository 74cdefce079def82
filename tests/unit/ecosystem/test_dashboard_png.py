"""The dashboard page that hack/dashboard_png.py screenshots (drawing only; no Prometheus).

Aspects covered: one card per dashboard panel under its row; a time series becomes an SVG
line per series with its legend; a stat shows the last value in the panel's unit; a panel
without data says so (a missing series is visible on the picture).
"""

from __future__ import annotations

from hack import dashboard_png, dashboards
from hack.dashboard_png import PanelData, Series


def _panels(with_data: bool) -> list[PanelData]:
    out = []
    for row, panels in dashboards.ROWS:
        for p in panels:
            series = (
                (Series("a", ((0.0, 1.0), (60.0, 2.0))), Series("b", ((0.0, 0.5), (60.0, 0.25))))
                if with_data
                else ()
            )
            out.append(PanelData(row, p.title, p.kind, p.unit, p.width, series, ()))
    return out


def test_page_has_every_panel_under_its_row() -> None:
    html = dashboard_png.page(_panels(True), "t")
    for row, panels in dashboards.ROWS:
        assert f"<h2>{row}</h2>" in html
        for p in panels:
            assert f"<h3>{p.title.replace('&', '&amp;')}</h3>" in html
    timeseries = sum(1 for _, ps in dashboards.ROWS for p in ps if p.kind == "timeseries")
    assert html.count("<polyline") == 2 * timeseries
    assert "No data" not in html


def test_stat_shows_the_last_value_in_its_unit() -> None:
    panel = PanelData("r", "Age", "stat", "s", 8, (Series("age", ((0.0, 3.0), (1.0, 0.25))),), ())
    assert "250 ms" in dashboard_png._svg(panel, 400)
    ratio = PanelData("r", "R", "stat", "percentunit", 8, (Series("x", ((0.0, 0.5),)),), ())
    assert "50.0%" in dashboard_png._svg(ratio, 400)


def test_panels_without_data_say_so() -> None:
    html = dashboard_png.page(_panels(False), "t")
    assert html.count("No data") == sum(len(ps) for _, ps in dashboards.ROWS)
