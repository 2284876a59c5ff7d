"""Render processes: killed past their time or memory, replaced, and the pool renders on."""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time
from pathlib import Path

import pytest

from connector.errors import (
    RenderLimitExceeded,
    RenderUnavailable,
    TemplateRenderError,
    TemplateSyntaxError,
)
from connector.rendering import Format, Renderer, RenderLimits, TemplateSource, sandbox
from connector.rendering.pool import RenderPool
from connector.rendering.slots import RenderSlots

from .conftest import PDF_SECONDS, TXT_SECONDS

# Python's strip_html filter is quadratic on runs of "<!--": about 25 s of CPU for this.
SLOW_FILTER = TemplateSource("tpl_slow", "Slow", body="{{ x | strip_html | size }}")
SLOW_DATA = {"x": ">" + "<!--" * 60_000}
SMALL = TemplateSource("tpl_small", "Small", body="<p>Hello {{ name }}</p>")


def timed(call):
    start = time.monotonic()
    try:
        call()
    except RenderLimitExceeded as error:
        return error, time.monotonic() - start
    pytest.fail("the render was not stopped")


def test_a_render_past_its_time_is_killed_and_the_pool_renders_on(renderer) -> None:
    error, seconds = timed(lambda: renderer.render("acc_a", SLOW_FILTER, SLOW_DATA, Format.TXT))

    assert error.status == 422 and error.code == "render_limit_exceeded"
    assert error.details == {"limit": "time", "seconds": TXT_SECONDS}
    assert seconds < TXT_SECONDS + 1
    for _ in range(3):  # the killed process was replaced: both processes render again
        assert renderer.render("acc_a", SMALL, {"name": "Ada"}, Format.TXT).content == (
            b"Hello Ada\n"
        )


def test_a_pdf_past_its_time_is_killed(renderer) -> None:
    rows = "{% for i in (1..15000) %}<tr><td>{{ i }}</td><td>cell {{ i }}</td></tr>{% endfor %}"
    table = TemplateSource("tpl_table", "Table", body=f"<table>{rows}</table>")

    error, seconds = timed(lambda: renderer.render("acc_a", table, {}, Format.PDF))

    assert error.details == {"limit": "time", "seconds": PDF_SECONDS}
    assert seconds < PDF_SECONDS + 1
    assert renderer.render("acc_a", SMALL, {}, Format.PDF).content.startswith(b"%PDF")


def test_a_render_past_the_memory_limit_is_stopped_and_the_pool_renders_on(tmp_path: Path) -> None:
    # 200 MB: the render process's own code takes about 120 MB of address space, and a PDF of
    # this table needs over 220 MB.
    renderer = Renderer(
        RenderPool(processes=1, memory_mb=200),
        RenderSlots(tmp_path, capacity=1, queue=0),
        RenderLimits(txt_seconds=5, pdf_seconds=60),
    )
    rows = "{% for i in (1..8000) %}<tr><td>{{ i }}</td><td>cell {{ i }}</td></tr>{% endfor %}"
    table = TemplateSource("tpl_table", "Table", body=f"<table>{rows}</table>")
    try:
        error, _ = timed(lambda: renderer.render("acc_a", table, {}, Format.PDF))
        after = renderer.render("acc_a", SMALL, {"name": "Ada"}, Format.TXT)
    finally:
        renderer.close()

    assert error.code == "render_limit_exceeded"
    assert error.details == {"limit": "memory", "megabytes": 200}
    assert "200 MB" in error.message
    assert after.content == b"Hello Ada\n"


def _spin_under_cpu_limit() -> None:
    sandbox.within_cpu(0.5, lambda: [None for _ in iter(int, 1)])


def test_the_kernel_ends_a_task_past_its_cpu_time() -> None:
    # The wall-clock kill's backstop, tested apart from it: no timer here but the kernel's.
    process = multiprocessing.get_context("spawn").Process(target=_spin_under_cpu_limit)
    process.start()
    process.join(30)

    assert process.exitcode == -signal.SIGXCPU


def _address_space_mb() -> float:
    return int(Path("/proc/self/status").read_text().split("VmSize:")[1].split()[0]) / 1024


def _threads_allocate(one_arena: bool, grown: multiprocessing.Queue) -> None:
    if one_arena:
        sandbox.one_malloc_arena()
    before, barrier = _address_space_mb(), threading.Barrier(9)

    def allocate() -> None:
        held = [bytes(20_000) for _ in range(100)]  # malloc's, not Python's small-object pool
        barrier.wait()  # every thread holds its memory at once
        barrier.wait()
        del held

    threads = [threading.Thread(target=allocate) for _ in range(8)]
    for thread in threads:
        thread.start()
    barrier.wait()
    grown.put(_address_space_mb() - before)
    barrier.wait()
    for thread in threads:
        thread.join()


def address_space_grown_by_threads(one_arena: bool) -> float:
    context = multiprocessing.get_context("spawn")
    grown = context.Queue()
    process = context.Process(target=_threads_allocate, args=(one_arena, grown))
    process.start()
    megabytes = grown.get(timeout=60)
    process.join(30)
    return megabytes


def test_a_render_processs_threads_share_one_malloc_arena() -> None:
    # Eight threads holding 2 MB each: with glibc's arena per thread, each reserves 64 MB of
    # address space, which a render process's RLIMIT_AS counts (576 MB in all here); with one
    # arena, the threads' stacks (8 MB each) and what they hold (78 MB here).
    stacks_and_held = 8 * 8 + 8 * 2
    assert address_space_grown_by_threads(one_arena=False) > stacks_and_held + 4 * 64
    assert address_space_grown_by_threads(one_arena=True) < stacks_and_held + 16


def test_errors_cross_back_with_their_code_and_details(renderer) -> None:
    with pytest.raises(TemplateSyntaxError) as refused:
        renderer.variables("acc_a", "{{ name }}", "line one\n{% if %}")

    assert refused.value.status == 422
    assert refused.value.details == {"line": 2, "column": 4}
    assert renderer.variables("acc_a", "{{ b }}{{ a }}", "{{ a.c }}") == ["a", "b"]


def test_data_too_deep_to_send_to_a_render_process_is_a_422(renderer) -> None:
    deep: dict = {}
    for _ in range(5_000):
        deep = {"d": deep}

    with pytest.raises(TemplateRenderError) as refused:
        renderer.render("acc_a", SMALL, deep, Format.TXT)

    assert "nested too deeply" in refused.value.message
    assert renderer.render("acc_a", SMALL, {"name": "Ada"}, Format.TXT).content == b"Hello Ada\n"


def render_processes() -> list[int]:
    """The render processes of this test: children of its fork server."""
    stats = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stats[int(entry.name)] = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if b"forkserver" in cmdline and int(stats[int(entry.name)][1]) == os.getpid():
                server = int(entry.name)
    return [pid for pid, fields in stats.items() if int(fields[1]) == server]


def kill_and_wait(pids: list[int]) -> None:
    for pid in pids:
        os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while any(Path(f"/proc/{pid}").exists() for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.01)  # until their fork server has reaped them


def test_render_processes_killed_from_outside_are_replaced(renderer) -> None:
    kill_and_wait(render_processes())  # while idle: the next renders still succeed

    assert renderer.render("acc_a", SMALL, {"name": "Ada"}, Format.TXT).content == b"Hello Ada\n"
    assert renderer.render("acc_a", SMALL, {"name": "Bo"}, Format.TXT).content == b"Hello Bo\n"

    killer = threading.Timer(0.5, lambda: [os.kill(p, signal.SIGKILL) for p in render_processes()])
    killer.start()
    error, _ = timed(lambda: renderer.render("acc_a", SLOW_FILTER, SLOW_DATA, Format.TXT))
    killer.join()

    assert error.details["limit"] == "memory"  # what a process that vanishes mid-render means
    assert renderer.render("acc_a", SMALL, {"name": "Cy"}, Format.TXT).content == b"Hello Cy\n"


def test_a_failed_render_leaves_nothing_behind_for_the_next(tmp_path: Path) -> None:
    # One process, so the two renders meet in it. The first allocates 390 MB before its value
    # is refused; the second needs about 100 MB of its own.
    renderer = Renderer(
        RenderPool(processes=1, memory_mb=512),
        RenderSlots(tmp_path, capacity=1, queue=0),
        RenderLimits(txt_seconds=60, pdf_seconds=60),  # time is not what this is about
    )
    swelling = TemplateSource("tpl_a", "A", body='{{ x | replace: ",", y | size }}')
    lists = "".join(f'{{% assign a{i} = s | split: "," %}}' for i in range(12))
    heavy = TemplateSource("tpl_b", "B", body=lists + "{{ a0 | size }}")
    many = ",".join(f"{i:x}" for i in range(100_000))
    try:
        with pytest.raises(RenderLimitExceeded) as refused:
            renderer.render(
                "acc_mallory", swelling, {"x": "," * 600_000, "y": "a" * 650}, Format.TXT
            )
        after = renderer.render("acc_ada", heavy, {"s": many}, Format.TXT)
    finally:
        renderer.close()

    assert refused.value.details == {"limit": "value"}
    assert after.content == b"100000\n"


def test_a_pool_closed_with_a_render_in_hand_answers_503(renderer) -> None:
    answers: list[BaseException] = []

    def render() -> None:
        try:
            renderer.render("acc_a", SLOW_FILTER, SLOW_DATA, Format.TXT)
        except BaseException as error:
            answers.append(error)

    running = threading.Thread(target=render)
    running.start()
    time.sleep(0.3)
    renderer.close()
    running.join(10)

    assert [type(a).__name__ for a in answers] == ["RenderUnavailable"]
    assert answers[0].status == 503  # type: ignore[attr-defined]
    with pytest.raises(RenderUnavailable):
        renderer.render("acc_a", SMALL, {}, Format.TXT)
