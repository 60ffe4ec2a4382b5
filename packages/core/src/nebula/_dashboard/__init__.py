"""The dashboard: a web page and JSON API served by the head, in a process of its own.

Its dependencies (starlette, uvicorn, prometheus_client) are the optional extra
``nebula-core[dashboard]``; only ``launch`` is imported by the rest of Nebula, and it
imports none of them.
"""
