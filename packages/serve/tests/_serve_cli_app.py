"""Applications the CLI and config-file tests import by path."""

from __future__ import annotations

from typing import Any

from nebula import serve


@serve.deployment
class Greeter:
    def __init__(self, greeting: str = "hello") -> None:
        self.greeting = greeting

    def reconfigure(self, config: dict[str, Any]) -> None:
        self.greeting = config["greeting"]

    def __call__(self, request: Any) -> str:
        return self.greeting


app = Greeter.bind()


def build(args: dict[str, Any]) -> serve.Application:
    return Greeter.bind(args.get("greeting", "built"))
