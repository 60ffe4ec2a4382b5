"""Actors: ``ActorClass`` (what ``@nebula.remote`` makes of a class), ``ActorHandle``, and
``exit_actor()`` for an actor to end itself from inside one of its methods."""

from __future__ import annotations

from nebula._api.actor import ActorClass, ActorHandle
from nebula._api.runtime import exit_actor

__all__ = ["ActorClass", "ActorHandle", "exit_actor"]
