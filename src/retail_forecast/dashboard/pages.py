"""The dashboard's HTML: plain string templates, every value escaped (no template engine).

Each page is a shell the server fills with what it knows at once (the series to pick from, the
model's facts); the charts and the numbers that need a forecast are drawn by ``dashboard.js``
from the API's answers. Values reach the script through ``data-`` attributes, never inline code,
so the Content-Security-Policy allows scripts from the app's own paths only.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from html import escape
from typing import Any, Final

STATIC: Final = "/dashboard/static"
VIEWS: Final = (
    ("series", "Series"),
    ("what-if", "What-if"),
    ("monitoring", "Monitoring"),
    ("model", "Model"),
)
# Plotly sets inline styles on its SVG: style-src needs 'unsafe-inline'; scripts never do.
CSP: Final = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
LOGIN_CSP: Final = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; form-action 'self'; "
    "frame-ancestors 'none'"
)
SECURITY_HEADERS: Final = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def _attrs(data: dict[str, str]) -> str:
    return "".join(f' data-{escape(k)}="{escape(v)}"' for k, v in data.items())


def layout(
    view: str, title: str, body: str, *, data: dict[str, str], logout: bool, plotly: str = ""
) -> str:
    """One page: the nav, the view's body, the stylesheet, the dashboard script and Plotly.js.

    ``plotly``: the versioned URL of the bundle on the views that draw charts ("" elsewhere),
    as ``data-plotly``: the charts are drawn at once as SVG (sketch.js) and the script fetches
    Plotly.js only when someone points at a chart, so parsing its 4.8 MB never holds a view
    back (bench/dashboard.py).
    """
    current = ' aria-current="page"'
    plotly_data = {"plotly": plotly} if plotly else {}
    links = "".join(
        f'<a href="/dashboard/{name}"{current if name == view else ""}>{escape(label)}</a>'
        for name, label in VIEWS
    )
    out = (
        '<form method="post" action="/dashboard/logout"><button>Log out</button></form>'
        if logout
        else ""
    )
    return (
        "<!doctype html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)} · retail_forecast</title>"
        '<link rel="icon" href="data:,">'  # no favicon request (a 404 in the console)
        f'<link rel="stylesheet" href="{STATIC}/dashboard.css">'
        f'<script src="{STATIC}/sketch.js" defer></script>'
        f'<script src="{STATIC}/dashboard.js" defer></script>'
        f'</head><body data-view="{escape(view)}"{_attrs(data | plotly_data)}>'
        f"<header><strong>retail_forecast</strong><nav>{links}</nav>{out}</header>"
        f"<main><h1>{escape(title)}</h1>{body}</main></body></html>\n"
    )


def series_picker(series: Iterable[tuple[int, str]]) -> str:
    """Return a searchable picker: type part of a store number or a family, choose from the list."""
    options = "".join(
        f'<option value="{escape(f"{store} · {family}")}"></option>' for store, family in series
    )
    return (
        '<form id="picker" class="picker" autocomplete="off">'
        '<label for="series-search">Store · family</label>'
        '<input id="series-search" name="series" list="series-list" required '
        'placeholder="type a store number or a family">'
        f'<datalist id="series-list">{options}</datalist>'
        '<button type="submit">Show</button></form>'
        '<p id="status" role="status" class="status"></p>'
    )


def series_body(series: Sequence[tuple[int, str]]) -> str:
    return (
        series_picker(series)
        + '<div id="chart" class="chart"></div>'
        + '<p class="legend">History: the last 90 days (▲ promotion days, ✕ closed days); '
        "forecast with no promotions planned (see What-if): the point and its central intervals "
        + "(80 % dark, 95 % light).</p>"
        + '<section id="why" hidden><h2>Why: the tree model\'s contributions</h2>'
        + '<label for="why-day">Forecast day</label> <select id="why-day"></select>'
        + '<p id="why-weights" class="note"></p><div id="why-chart" class="chart small"></div>'
        + '<table id="why-table" class="numbers"></table></section>'
    )


def what_if_body(series: Sequence[tuple[int, str]]) -> str:
    return (
        series_picker(series)
        + '<p><label for="promo-value">Items on promotion on a promoted day</label> '
        + '<input id="promo-value" type="number" min="1" step="1" value="1"></p>'
        + '<div id="chart" class="chart"></div>'
        + '<table id="plan" class="numbers"><thead><tr><th>Day</th><th>Promote</th>'
        + "<th>Baseline plan</th><th>This plan</th><th>Change</th></tr></thead>"
        + "<tbody></tbody></table>"
    )


def monitoring_body() -> str:
    return (
        '<section id="alert" class="alert" aria-live="polite">Loading…</section>'
        '<h2>Accuracy per horizon day</h2><div id="accuracy-chart" class="chart small"></div>'
        '<table id="accuracy" class="numbers"></table>'
        '<h2>Interval coverage</h2><p id="coverage-state"></p>'
        '<table id="coverage" class="numbers"></table>'
        '<h2>Drift per feature</h2><p id="drift-state"></p>'
        '<table id="drift" class="numbers"></table>'
    )


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4f}"
    return escape("–" if value is None else str(value))


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]], *, table_id: str) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{_cell(v)}</td>" for v in row) + "</tr>" for row in rows)
    return (
        f'<table id="{escape(table_id)}" class="numbers"><thead><tr>{head}</tr></thead>'
        f"<tbody>{body}</tbody></table>"
    )


def facts(pairs: Iterable[tuple[str, Any]]) -> str:
    items = "".join(f"<dt>{escape(k)}</dt><dd>{_cell(v)}</dd>" for k, v in pairs)
    return f'<dl id="facts" class="facts">{items}</dl>'


def login_page(error: str | None = None) -> str:
    """Return the key form (no script): the key is posted once and kept as a session cookie."""
    message = f'<p class="error" role="alert">{escape(error)}</p>' if error else ""
    return (
        "<!doctype html>\n"
        '<html lang="en"><head><meta charset="utf-8"><title>Log in · retail_forecast</title>'
        '<link rel="icon" href="data:,">'
        # inline: the stylesheet is behind the login like every other dashboard path
        "<style>body{font-family:system-ui,sans-serif;margin:3rem auto;max-width:32rem}"
        ".error{color:#b00020}</style></head><body>"
        "<main><h1>retail_forecast dashboard</h1>"
        "<p>This service asks for an API key. It is kept for this browser session only.</p>"
        f'{message}<form method="post" action="/dashboard/login">'
        '<label for="api_key">API key</label> '
        '<input id="api_key" name="api_key" type="password" required autocomplete="off"> '
        "<button>Open the dashboard</button></form></main></body></html>\n"
    )
