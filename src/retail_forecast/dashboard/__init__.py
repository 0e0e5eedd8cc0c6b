"""The planner dashboard: server-rendered pages over the serving predictor, charts from Plotly.js.

Served by the same app under ``/dashboard`` (``/`` redirects there); its script reads the same
routes as any client (``POST /api/v1/predict``, ``/api/v1/monitoring/*``), so what a planner sees
is what the API answers. Nothing is loaded from outside the app: Plotly.js is the bundle shipped
inside the ``plotly`` package (``pip install 'retail-forecast[dashboard]'``).
"""
