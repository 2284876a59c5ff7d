"""PDF renders cannot take every thread: a few convert, a few wait, the rest get 429 at once."""

from __future__ import annotations

import threading
import time

import pytest

from connector.paging import PageQuery
from connector.rendering.slots import PdfSlots, RenderBusy
from connector.templates import TemplateFields

from ..helpers import key_header


def hold(slots: PdfSlots, release: threading.Event, entered: threading.Event) -> threading.Thread:
    def run() -> None:
        with slots.held():
            entered.set()
            release.wait(10)

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def test_one_converts_one_waits_the_next_is_turned_away_then_the_waiter_goes() -> None:
    slots = PdfSlots(concurrency=1, queue=1, wait_seconds=10)
    release, first_in, second_in = threading.Event(), threading.Event(), threading.Event()
    first = hold(slots, release, first_in)
    first_in.wait(5)
    second = hold(slots, release, second_in)
    deadline = time.monotonic() + 5
    while slots._waiting == 0 and time.monotonic() < deadline:  # until the second is queued
        time.sleep(0.001)

    with pytest.raises(RenderBusy) as busy, slots.held():
        pass
    release.set()
    first.join(5)
    second.join(5)

    assert second_in.is_set()
    assert busy.value.status == 429 and busy.value.retry_after == 5


def test_a_waiter_gives_up_after_its_wait() -> None:
    slots = PdfSlots(concurrency=1, queue=1, wait_seconds=0.05)
    release, entered = threading.Event(), threading.Event()
    holder = hold(slots, release, entered)
    entered.wait(5)

    with pytest.raises(RenderBusy), slots.held():
        pass
    release.set()
    holder.join(5)


@pytest.fixture
def settings(settings):
    return settings.model_copy(update={"pdf_concurrency": 1, "pdf_queue": 0})


def test_busy_pdf_slots_answer_429_with_retry_after_and_txt_still_renders(
    client, services, account, standard_key
) -> None:
    template = services.templates.create(account.id, TemplateFields(name="A", body="<p>a</p>"))
    release, entered = threading.Event(), threading.Event()
    holder = hold(services.renderer.pdf_slots, release, entered)
    entered.wait(5)
    headers = key_header(standard_key.value)

    try:
        pdf = client.post("/v1/documents", json={"template_id": template.id}, headers=headers)
        txt = client.post(
            "/v1/documents", json={"template_id": template.id, "format": "txt"}, headers=headers
        )
        me = client.get("/v1/me", headers=headers)
    finally:
        release.set()
        holder.join(5)

    assert pdf.status_code == 429 and pdf.headers["Retry-After"] == "5"
    assert pdf.json["error"]["code"] == "render_busy"
    assert txt.status_code == 201 and me.status_code == 200
    assert [d.format for d in services.documents.list(account.id, PageQuery()).data] == ["txt"]
