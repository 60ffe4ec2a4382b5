"""A FastAPI app as a deployment's ingress, over real HTTP: routes that are methods, path and
query parameters, pydantic bodies and response models, dependencies, errors, and the docs."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

import pytest

fastapi = pytest.importorskip("fastapi")

from fastapi import Depends, FastAPI, Header, HTTPException  # noqa: E402
from pydantic import BaseModel  # noqa: E402

from nebula import serve  # noqa: E402

pytestmark = pytest.mark.timeout(120)


def call(
    url: str, *, method: str = "GET", body: Any = None, headers: dict[str, str] | None = None
) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    if data is not None:
        request.add_header("content-type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            raw = response.read()
            status = response.status
    except urllib.error.HTTPError as error:
        raw = error.read()
        status = error.code
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, raw.decode()


class Item(BaseModel):
    name: str
    price: float
    tags: list[str] = []


class PublicItem(BaseModel):
    """What the API shows of an item: no tags."""

    id: int
    name: str
    price: float


def api_key(x_api_key: str = Header(default="")) -> str:
    if x_api_key != "secret":
        raise HTTPException(status_code=401, detail="bad key")
    return x_api_key


@serve.deployment
class Pricing:
    def discount(self, price: float) -> float:
        return round(price * 0.9, 2)


app = FastAPI(title="shop")


@app.get("/health")
def health() -> dict[str, str]:  # a plain function route, not a method
    return {"status": "ok"}


@serve.deployment
@serve.ingress(app)
class Shop:
    def __init__(self, pricing: Any, currency: str) -> None:
        self.pricing = pricing
        self.currency = currency
        self.items: dict[int, Item] = {}

    @app.post("/items", status_code=201)
    async def create(self, item: Item) -> dict[str, Any]:
        item_id = len(self.items) + 1
        self.items[item_id] = item
        return {"id": item_id, "currency": self.currency}

    @app.get("/items/{item_id}", response_model=PublicItem)
    def read(self, item_id: int) -> Any:
        item = self.items.get(item_id)
        if item is None:
            raise HTTPException(status_code=404, detail=f"no item {item_id}")
        return {"id": item_id, **item.model_dump()}

    @app.get("/search")
    def search(self, q: str, limit: int = 10) -> list[str]:
        names = sorted(i.name for i in self.items.values() if q in i.name)
        return names[:limit]

    @app.get("/items/{item_id}/discounted")
    async def discounted(self, item_id: int) -> dict[str, float]:
        price = self.items[item_id].price
        return {"price": await self.pricing.discount.remote(price)}

    @app.delete("/items/{item_id}")
    def remove(self, item_id: int, key: str = Depends(api_key)) -> dict[str, bool]:
        return {"removed": self.items.pop(item_id, None) is not None}


@pytest.fixture(scope="module")
def shop(serve_cluster: str) -> str:
    serve.run(Shop.bind(Pricing.bind(), "EUR"), name="shop", route_prefix="/shop")
    return f"{serve_cluster}/shop"


def test_method_routes_see_the_instance_and_take_pydantic_bodies(shop: str) -> None:
    status, body = call(f"{shop}/items", method="POST", body={"name": "lamp", "price": 20})
    assert (status, body) == (201, {"id": 1, "currency": "EUR"})
    call(f"{shop}/items", method="POST", body={"name": "desk lamp", "price": 50, "tags": ["x"]})
    status, body = call(f"{shop}/items/2")
    assert status == 200
    assert body == {"id": 2, "name": "desk lamp", "price": 50.0}  # the response model drops tags


def test_path_and_query_parameters_are_converted_and_validated(shop: str) -> None:
    call(f"{shop}/items", method="POST", body={"name": "chair", "price": 30})
    assert call(f"{shop}/search?q=lamp") == (200, ["desk lamp", "lamp"])
    assert call(f"{shop}/search?q=lamp&limit=1") == (200, ["desk lamp"])
    status, body = call(f"{shop}/search?q=lamp&limit=many")
    assert status == 422 and body["detail"][0]["loc"] == ["query", "limit"]
    status, body = call(f"{shop}/items/not-a-number")
    assert status == 422 and body["detail"][0]["loc"] == ["path", "item_id"]
    assert call(f"{shop}/search")[0] == 422  # q is required


def test_bad_bodies_errors_and_dependencies(shop: str) -> None:
    status, body = call(f"{shop}/items", method="POST", body={"name": "no price"})
    assert status == 422 and body["detail"][0]["loc"] == ["body", "price"]
    assert call(f"{shop}/items/999") == (404, {"detail": "no item 999"})
    assert call(f"{shop}/items/1", method="DELETE") == (401, {"detail": "bad key"})
    status, body = call(f"{shop}/items/1", method="DELETE", headers={"x-api-key": "secret"})
    assert (status, body) == (200, {"removed": True})


def test_routes_compose_with_other_deployments(shop: str) -> None:
    status, body = call(f"{shop}/items", method="POST", body={"name": "rug", "price": 100})
    assert status == 201
    assert call(f"{shop}/items/{body['id']}/discounted") == (200, {"price": 90.0})


def test_plain_function_routes_and_the_generated_docs(shop: str) -> None:
    assert call(f"{shop}/health") == (200, {"status": "ok"})
    status, schema = call(f"{shop}/openapi.json")
    assert status == 200 and schema["info"]["title"] == "shop"
    # The schema describes the routes without the instance parameter.
    parameters = schema["paths"]["/items/{item_id}"]["get"]["parameters"]
    assert [p["name"] for p in parameters] == ["item_id"]
    status, page = call(f"{shop}/docs")
    assert status == 200 and "swagger" in page.lower()
