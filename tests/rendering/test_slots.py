"""Render slots: a machine-wide cap with a short queue, half of it at most for one account, kept
by the kernel across processes (a process that dies gives its slots back)."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from connector.errors import RenderBusy
from connector.paging import PageQuery
from connector.rendering.slots import RenderSlots
from connector.templates import TemplateFields

from ..helpers import key_header


@contextmanager
def holding(slots: RenderSlots, account_id: str) -> Iterator[threading.Thread]:
    """A thread that holds one of ``slots`` for ``account_id`` until the block ends."""
    entered, release = threading.Event(), threading.Event()

    def hold() -> None:
        with slots.held(account_id):
            entered.set()
            release.wait(30)

    thread = threading.Thread(target=hold)
    thread.start()
    assert entered.wait(10)
    try:
        yield thread
    finally:
        release.set()
        thread.join(10)


def test_one_account_holds_half_the_slots_and_another_gets_in_at_once(tmp_path: Path) -> None:
    slots = RenderSlots(tmp_path, capacity=4, queue=4, wait_seconds=0.2)

    with holding(slots, "acc_a"), holding(slots, "acc_a"):
        with pytest.raises(RenderBusy) as busy, slots.held("acc_a"):
            pass
        with slots.held("acc_b"):  # the A holders stay: B would be refused after its wait
            pass

    assert busy.value.status == 429 and busy.value.retry_after == 5


def test_a_waiting_render_starts_when_a_slot_frees(tmp_path: Path) -> None:
    slots = RenderSlots(tmp_path, capacity=1, queue=1, wait_seconds=10)
    entered = threading.Event()

    def wait_then_render() -> None:
        with slots.held("acc_b"):
            entered.set()

    with holding(slots, "acc_a"):
        waiter = threading.Thread(target=wait_then_render)
        waiter.start()
        time.sleep(0.1)
        assert not entered.is_set()
    waiter.join(5)

    assert entered.is_set()


def test_past_the_queue_the_answer_is_busy_at_once(tmp_path: Path) -> None:
    slots = RenderSlots(tmp_path, capacity=2, queue=2, wait_seconds=2)
    patient = RenderSlots(tmp_path, capacity=2, queue=2, wait_seconds=60)

    with holding(slots, "acc_a"), holding(slots, "acc_b"), waiting(slots, ["acc_c", "acc_d"]):
        started = time.monotonic()
        with pytest.raises(RenderBusy), patient.held("acc_e"):
            pass
        refused_after = time.monotonic() - started

    assert refused_after < 2  # not after its 60 s wait: there was no place to wait in


@contextmanager
def waiting(slots: RenderSlots, accounts: list[str]) -> Iterator[None]:
    """Renders of ``accounts`` waiting for a slot while the block runs (they give up after)."""
    threads = [threading.Thread(target=_try_render, args=(slots, a)) for a in accounts]
    for thread in threads:
        thread.start()
    time.sleep(0.5)  # until they wait
    yield
    for thread in threads:
        thread.join(15)


def _try_render(slots: RenderSlots, account_id: str) -> None:
    try:
        with slots.held(account_id):
            pass
    except RenderBusy:
        pass


def test_slots_whose_directory_was_removed_make_it_again(tmp_path: Path) -> None:
    directory = tmp_path / "slots"
    slots = RenderSlots(directory, capacity=1, queue=0)
    directory.rmdir()  # as a cleaner of temporary files would

    with slots.held("acc_a"), pytest.raises(RenderBusy), slots.held("acc_b"):
        pass

    assert directory.is_dir()


HOLD_IN_ANOTHER_PROCESS = """
import sys, time
from pathlib import Path
from connector.rendering.slots import RenderSlots
with RenderSlots(Path(sys.argv[1]), capacity=1, queue=0).held("acc_other"):
    print("held", flush=True)
    time.sleep(60)
"""


def test_slots_are_shared_by_processes_and_a_killed_process_gives_its_slot_back(
    tmp_path: Path,
) -> None:
    other = subprocess.Popen(
        [sys.executable, "-c", HOLD_IN_ANOTHER_PROCESS, str(tmp_path)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert other.stdout is not None and other.stdout.readline() == "held\n"
        slots = RenderSlots(tmp_path, capacity=1, queue=0)
        with pytest.raises(RenderBusy), slots.held("acc_a"):
            pass
    finally:
        other.kill()
        other.wait(10)

    with slots.held("acc_a"):
        pass


@pytest.fixture
def settings(settings):
    return settings.model_copy(update={"render_concurrency": 1, "render_queue": 0})


@pytest.mark.parametrize("format", ["pdf", "txt"])
def test_busy_slots_answer_429_with_retry_after_and_other_routes_answer(
    client, services, account, standard_key, format: str
) -> None:
    template = services.templates.create(account.id, TemplateFields(name="A", body="<p>a</p>"))
    headers = key_header(standard_key.value)
    same_machine = RenderSlots(services.own_slots_dir, capacity=1, queue=0)

    with holding(same_machine, "acc_someone_else"):
        rendered = client.post(
            "/v1/documents", json={"template_id": template.id, "format": format}, headers=headers
        )
        me = client.get("/v1/me", headers=headers)

    assert rendered.status_code == 429 and rendered.headers["Retry-After"] == "5"
    assert rendered.json["error"]["code"] == "render_busy"
    assert me.status_code == 200
    assert services.documents.list(account.id, PageQuery()).data == []
