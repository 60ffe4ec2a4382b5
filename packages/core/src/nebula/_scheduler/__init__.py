"""Scheduling: where a task, an actor or a placement group's bundles should run.

Everything here is a pure function of a request and a snapshot of the cluster
(:class:`~nebula._scheduler.view.NodeView`), so it is tested without processes. The node
manager (lease requests), the control store (actors and placement groups) and the API's
option checks all call in here; none of them decides placement on its own.

- ``resources``: arithmetic on resource dicts, with the one ``fits`` tolerance.
- ``view``: what a policy sees and must answer (the protocols plugins implement).
- ``policies``: the built-in policies for tasks and actors (DEFAULT, SPREAD, ...).
- ``bundles``: placement-group bundle resources and the PACK/SPREAD/STRICT_* strategies.
- ``placement``: one lease request's placement, as the node manager and control store ask.
"""
