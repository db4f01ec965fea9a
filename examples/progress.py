"""A long job's progress, shown live by a progress bar.

``POST /jobs`` starts a job in the background; ``GET /jobs/{id}/events`` streams its progress.
Every event has an id (the step number), so a browser that reconnects in the middle sends
``Last-Event-ID`` and gets only the steps it missed. When the job is done the page closes its
``EventSource``; otherwise the browser would reconnect to a finished stream forever::

    .venv/bin/uvicorn examples.progress:app

then open http://127.0.0.1:8000.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from typing import Annotated

import msgspec
from litestar import Litestar, MediaType, get, post
from litestar.exceptions import NotFoundException
from litestar.params import FromPath, FromQuery, HeaderParameter

from litestar_sse import ServerSentEvent, ServerSentEventMessage


class Progress(msgspec.Struct):
    step: int
    total: int
    percent: float
    message: str


class Job:
    """A job running in the background, and every progress report it made so far."""

    def __init__(self, job_id: str, steps: int, delay: float) -> None:
        self.id = job_id
        self.steps = steps
        self.delay = delay
        self.reports: list[Progress] = []
        self.done = False
        self._changed = asyncio.Event()
        self.task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        for step in range(1, self.steps + 1):
            await asyncio.sleep(self.delay)  # one unit of real work
            percent = round(100 * step / self.steps, 1)
            self._report(Progress(step, self.steps, percent, f"processed batch {step}"))
        self.done = True
        self._notify()

    def _report(self, progress: Progress) -> None:
        self.reports.append(progress)
        self._notify()

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def follow(self, after_step: int) -> AsyncIterator[Progress]:
        """Every report after ``after_step``, waiting for new ones until the job is done."""
        sent = after_step
        while True:
            changed = self._changed
            while sent < len(self.reports):
                yield self.reports[sent]
                sent += 1
            if self.done:
                return
            await changed.wait()


jobs: dict[str, Job] = {}
job_numbers = itertools.count(1)


@post("/jobs", status_code=201)
async def start_job(steps: FromQuery[int] = 40, delay: FromQuery[float] = 0.15) -> dict[str, str]:
    """Start a job of ``steps`` steps, ``delay`` seconds each."""
    job = Job(f"job-{next(job_numbers)}", steps, delay)
    jobs[job.id] = job
    return {"id": job.id, "events": f"/jobs/{job.id}/events"}


async def progress_events(job: Job, after_step: int) -> AsyncIterator[ServerSentEventMessage]:
    async for progress in job.follow(after_step):
        yield ServerSentEventMessage(data=progress, event="progress", id=progress.step)
    yield ServerSentEventMessage(data={"job": job.id}, event="done")


@get("/jobs/{job_id:str}/events")
async def job_events(
    job_id: FromPath[str],
    last_event_id: Annotated[str | None, HeaderParameter(name="Last-Event-ID")] = None,
) -> ServerSentEvent:
    """The job's progress; resumes after ``Last-Event-ID`` when the browser reconnects."""
    job = jobs.get(job_id)
    if job is None:
        raise NotFoundException(f"no job {job_id!r}")
    after_step = int(last_event_id) if last_event_id and last_event_id.isdigit() else 0
    return ServerSentEvent(progress_events(job, after_step), ping_interval=15)


PAGE = """<!doctype html>
<html lang="en">
<meta charset="utf-8">
<title>litestar-sse: job progress</title>
<link rel="icon" href="data:,">
<style>
  body { font: 16px/1.5 system-ui, sans-serif; margin: 3rem auto; max-width: 36rem; }
  progress { width: 100%; height: 1.5rem; }
  #status { color: #57606a; }
</style>
<h1>Job progress</h1>
<button id="start">Start a job</button>
<p><progress id="bar" max="100" value="0"></progress></p>
<p id="status">No job yet.</p>
<script>
  const bar = document.getElementById("bar");
  const status = document.getElementById("status");
  document.getElementById("start").onclick = async () => {
    const job = await (await fetch("/jobs", {method: "POST"})).json();
    bar.value = 0;
    status.textContent = `Started ${job.id}.`;
    const source = new EventSource(job.events);
    source.addEventListener("progress", (event) => {
      const progress = JSON.parse(event.data);
      bar.value = progress.percent;
      status.textContent = `${progress.percent}% - ${progress.message}`;
    });
    source.addEventListener("done", () => {
      source.close();  // a finished stream must be closed, or EventSource reconnects
      status.textContent = `${job.id} is done.`;
    });
    source.onerror = () => {
      if (source.readyState === EventSource.CONNECTING) status.textContent += " (reconnecting)";
    };
  };
</script>
</html>
"""


@get("/", media_type=MediaType.HTML)
async def index() -> str:
    return PAGE


app = Litestar([start_job, job_events, index])
