"""``nebula.util.actor_pool``: the actor pool under its familiar module path."""

from __future__ import annotations

from nebula.util._actor_pool import ActorPool

__all__ = ["ActorPool"]
