"""The dashboard: server-rendered pages over the same services and rules as the JSON API.

``qruntime.web.mount.install_dashboard`` adds it to the API's app. Nothing here imports
``qruntime.api``, so the API can import any of it without a cycle.
"""
