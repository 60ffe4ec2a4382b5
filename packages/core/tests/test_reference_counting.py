"""The reference counter's rules, driven without processes: when an owned value is freed,
when an owner is told of a borrow and of its end, and what keeps an entry alive."""

from __future__ import annotations

from nebula._protocol import ObjectValue
from nebula._worker.references import ReferenceTable, Release

ME, OWNER, BORROWER = "tcp://10.0.0.1:1", "tcp://10.0.0.2:2", "tcp://10.0.0.3:3"
OID, INNER = b"o" * 20, b"i" * 20


def owned_with_value(table: ReferenceTable, object_id: bytes = OID) -> None:
    entry = table.owned(object_id)
    entry.value = ObjectValue(object_id, inline=b"v")


def test_an_owned_value_is_freed_when_its_last_local_ref_goes() -> None:
    table = ReferenceTable(ME)
    owned_with_value(table)
    assert table.add_local_ref(OID, ME) is False  # owners tell nobody
    table.add_local_ref(OID, ME)
    assert table.drop_local_ref(OID) is None
    released = table.drop_local_ref(OID)
    assert released is not None and released[1] is Release.FREE_VALUE
    assert table.get(OID) is None


def test_a_borrower_keeps_an_owned_value_until_it_is_done() -> None:
    table = ReferenceTable(ME)
    owned_with_value(table)
    table.add_local_ref(OID, ME)
    table.add_borrower(OID, BORROWER)
    assert table.drop_local_ref(OID) is None
    assert table.remove_borrower(OID, "tcp://someone-else:9") is None
    released = table.remove_borrower(OID, BORROWER)
    assert released is not None and released[1] is Release.FREE_VALUE


def test_the_owner_is_not_its_own_borrower() -> None:
    table = ReferenceTable(ME)
    owned_with_value(table)
    table.add_local_ref(OID, ME)
    table.add_borrower(OID, ME)
    released = table.drop_local_ref(OID)
    assert released is not None and released[1] is Release.FREE_VALUE


def test_a_task_result_is_freed_only_once_it_arrives() -> None:
    table = ReferenceTable(ME)
    table.owned(OID)  # a task's return: no value yet
    table.add_local_ref(OID, ME)
    assert table.drop_local_ref(OID) is None
    entry = table.get(OID)
    assert entry is not None  # kept: the result will arrive and must then be freed
    entry.value = ObjectValue(OID, inline=b"late")
    released = table.collect(entry)
    assert released is not None and released[1] is Release.FREE_VALUE


def test_a_borrowed_ref_tells_its_owner_once_and_returns_the_borrow() -> None:
    table = ReferenceTable(ME)
    assert table.add_local_ref(OID, OWNER) is True
    assert table.add_local_ref(OID, OWNER) is False
    assert table.drop_local_ref(OID) is None
    released = table.drop_local_ref(OID)
    assert released is not None and released[1] is Release.RETURN_BORROW
    assert released[0].owner == OWNER


def test_a_pin_keeps_a_contained_ref_alive() -> None:
    table = ReferenceTable(ME)
    table.pin(INNER, OWNER)  # an owned value holds a ref to INNER
    table.add_local_ref(INNER, OWNER)
    assert table.drop_local_ref(INNER) is None
    released = table.unpin(INNER)
    assert released is not None and released[1] is Release.RETURN_BORROW


def test_an_owned_actor_goes_out_of_scope_with_its_last_handle() -> None:
    table = ReferenceTable(ME)
    table.owned(OID, is_actor=True)
    table.add_local_ref(OID, ME, is_actor=True)
    table.add_borrower(OID, BORROWER)
    assert table.drop_local_ref(OID) is None
    released = table.remove_borrower(OID, BORROWER)
    assert released is not None and released[1] is Release.ACTOR_OUT_OF_SCOPE


def test_releasing_an_unknown_id_does_nothing() -> None:
    table = ReferenceTable(ME)
    assert table.drop_local_ref(OID) is None
    assert table.unpin(OID) is None
    assert table.remove_borrower(OID, BORROWER) is None
