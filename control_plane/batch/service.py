"""The rules of batch jobs: submit, follow, cancel, resume -- jobs run in their own processes.

:meth:`BatchService.submit` resolves the model version (exact, or the latest in a stage),
checks that input and output stay under the data root, that the output folder is new or
empty and that every input file fits the model (naming missing and mistyped columns), writes
``job.json`` and the job row, and starts the job process (:mod:`control_plane.batch.runner`)
with ``asyncio.create_subprocess_exec``: scoring never runs in the API's event loop. A watcher
task per job copies ``progress.json`` into the row until the process ends. :meth:`cancel`
sends SIGTERM (the job stops at a shard boundary); :meth:`resume` restarts a job that ended
without succeeding -- only when its fingerprint still matches, else it names what changed.
:meth:`recover` marks jobs a previous control plane left running as failed (resumable);
:meth:`stop` cancels and awaits every job process of this control plane.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import logging
import signal
import sys
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

import msgspec
import onnxruntime as ort

from control_plane.background import write_until_done
from control_plane.batch.fingerprint import fingerprint_parts, job_fingerprint
from control_plane.batch.models import (
    FINAL_STATES,
    BatchJob,
    BatchRequest,
    JobState,
    Progress,
)
from control_plane.batch.runner import read_progress
from control_plane.batch.schema import check_schema, model_info, result_columns
from control_plane.batch.shards import JOB_FILE, JobDescription, read_description, save_json
from control_plane.batch.sources import InputFile, list_inputs, read_schema
from modelyard.errors import FailedPrecondition, InvalidArgument, NotFound
from modelyard.paths import check_path_text

if TYPE_CHECKING:
    from control_plane.batch.store import BatchJobStore
    from control_plane.registry.artifacts import ArtifactStore
    from control_plane.registry.service import RegistryService
    from control_plane.security.models import Principal
    from modelyard.models import RegisteredModel
    from modelyard.storage import Database

log = logging.getLogger(__name__)

_WATCH_S = 0.5
MAX_LIST = 1000


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class BatchService:
    """Submit, follow, cancel and resume batch prediction jobs.

    Args:
        database: the platform database.
        store: the batch jobs table.
        registry: resolves model versions and stages.
        artifacts: where the versions' ONNX files are.
        data_root: the folder every input and output path must stay under.
    """

    def __init__(
        self,
        database: Database,
        store: BatchJobStore,
        registry: RegistryService,
        artifacts: ArtifactStore,
        data_root: Path,
    ) -> None:
        self._database = database
        self._store = store
        self._registry = registry
        self._artifacts = artifacts
        self.data_root = data_root.resolve()
        self._processes: dict[str, asyncio.subprocess.Process] = {}
        self._stopping = False
        self._watchers: dict[str, asyncio.Task[None]] = {}
        self._resuming: set[str] = set()
        """Jobs a :meth:`resume` call is starting (between its check and the new process)."""

    def resolve(self, relative: str, what: str) -> Path:
        """``relative`` under the data root.

        Raises:
            InvalidArgument: the path is absolute or leaves the data root, or cannot be a path
                (NUL, a name longer than 255 bytes: :func:`~modelyard.paths.check_path_text`).
        """
        check_path_text(relative, what)
        path = (self.data_root / relative).resolve()
        if Path(relative).is_absolute() or not path.is_relative_to(self.data_root):
            raise InvalidArgument(f"{what} {relative!r} must be a path inside the batch data root")
        return path

    async def _version(self, request: BatchRequest) -> RegisteredModel:
        if request.version is not None:
            return await self._registry.get(request.model, request.version)
        return await self._registry.latest(request.model, request.stage)

    async def submit(self, request: BatchRequest, principal: Principal) -> BatchJob:
        """Check ``request``, record the job and start its process.

        Raises:
            NotFound: no such model version (or none in the stage).
            InvalidArgument: paths outside the root, unreadable input, or input that does
                not fit the model (every missing or mistyped column named).
            FailedPrecondition: the output folder exists and is not empty.
        """
        input_path = self.resolve(request.input, "input")
        output = self.resolve(request.output, "output")
        model = await self._version(request)
        onnx_path = self._artifacts.path(model.onnx_sha256)
        files = await asyncio.to_thread(self._check_input, input_path, onnx_path, request)
        if output.exists() and (not output.is_dir() or any(output.iterdir())):
            raise FailedPrecondition(f"output {request.output!r} exists and is not empty")
        job_id = uuid.uuid4().hex
        parts = fingerprint_parts(
            model.name, model.version, model.onnx_sha256, files, request.options
        )
        fingerprint = job_fingerprint(
            model.name, model.version, model.onnx_sha256, files, request.options
        )
        description = JobDescription(
            job_id=job_id,
            fingerprint=fingerprint,
            model=model.name,
            version=model.version,
            onnx_path=str(onnx_path),
            onnx_sha256=model.onnx_sha256,
            input=str(input_path),
            options=request.options,
            parts=parts,
        )
        try:
            output.mkdir(parents=True, exist_ok=True)
        except OSError as exc:  # NOTE: e.g. a file where a folder of the path should be (a 500)
            raise InvalidArgument(
                f"output {request.output!r} cannot be made a folder: {exc.strerror}"
            ) from None
        save_json(output / JOB_FILE, description)
        now = _now()
        job = BatchJob(
            id=job_id,
            model=model.name,
            version=model.version,
            input=request.input,
            output=request.output,
            options=request.options,
            fingerprint=fingerprint,
            progress=Progress(state=JobState.PENDING),
            created_at=now,
            updated_at=now,
            created_by=principal.name,
        )
        async with self._database.write() as conn:
            await self._store.add(conn, job)
        await self._start(job)
        return job

    @staticmethod
    def _check_input(input_path: Path, onnx_path: Path, request: BatchRequest) -> list[InputFile]:
        """The input files, each checked against the model's columns."""
        session = ort.InferenceSession(onnx_path.read_bytes(), providers=["CPUExecutionProvider"])
        info = model_info(session)
        files = list_inputs(input_path)
        extra = request.options.id_columns + request.options.carry_columns
        kinds = {file.path.suffix for file in files}
        if request.options.dask_scheduler and len(kinds) > 1:
            raise InvalidArgument(
                f"input {request.input!r} mixes {' and '.join(sorted(kinds))} files: a job on "
                "a Dask cluster reads one format"
            )
        clashing = sorted(set(extra) & result_columns(info))
        if clashing:
            raise InvalidArgument(
                f"kept columns {clashing} have the names of output columns, which would "
                "overwrite them; rename them in the input"
            )
        for file in files:
            check_schema(info, read_schema(file), extra, file.name)
        return files

    async def _start(self, job: BatchJob) -> None:
        """Start the job process for ``job`` and the task that follows it."""
        output = self.resolve(job.output, "output")
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "control_plane.batch.runner",
            str(output),
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
            start_new_session=True,
        )
        self._processes[job.id] = process
        task = asyncio.create_task(self._watch(job.id, output, process))
        self._watchers[job.id] = task
        task.add_done_callback(lambda _: self._watchers.pop(job.id, None))

    async def _watch(self, job_id: str, output: Path, process: asyncio.subprocess.Process) -> None:
        """Copy ``progress.json`` into the job row until the process ends, then once more."""
        try:
            while True:
                try:
                    await asyncio.wait_for(process.wait(), _WATCH_S)
                    break
                except TimeoutError:
                    try:
                        await self._record(job_id, read_progress(output))
                    except Exception as exc:  # NOTE: progress while it runs is best effort
                        # (reads take it from the folder); the final state is retried below
                        log.warning("batch job %s: progress not recorded (%r)", job_id, exc)
            progress = read_progress(output)
            if progress is None or progress.state not in FINAL_STATES:
                code = process.returncode
                error = f"the job process ended unexpectedly (exit status {code}); resume it"
                progress = (
                    Progress(state=JobState.FAILED, error=error)
                    if progress is None
                    else (msgspec.structs.replace(progress, state=JobState.FAILED, error=error))
                )
            await self._record_final(job_id, progress)
        finally:
            self._processes.pop(job_id, None)

    async def _record_final(self, job_id: str, progress: Progress) -> None:
        """Record how the job ended, retrying with backoff until it is in (or the control plane
        stops: a restart's :meth:`recover` then settles the job). Meanwhile reads still take
        the job's progress from its folder."""
        await write_until_done(
            lambda: self._record(job_id, progress),
            what=f"batch job {job_id}: its final state {progress.state.value}",
            logger=log,
            give_up=lambda: self._stopping,
        )

    async def _record(self, job_id: str, progress: Progress | None) -> None:
        if progress is None:
            return
        async with self._database.write() as conn:
            await self._store.set_progress(conn, job_id, progress, _now())

    async def get(self, job_id: str) -> BatchJob:
        """The job with its live progress (read from its folder while it runs).

        Raises:
            NotFound: no job has this id.
        """
        async with self._database.read() as conn:
            job = await self._store.get(conn, job_id)
        if job is None:
            raise NotFound("batch job", job_id)
        if job_id in self._processes:
            live = read_progress(self.resolve(job.output, "output"))
            if live is not None and live.state is not JobState.PENDING:
                job = msgspec.structs.replace(job, progress=live)
        return job

    async def jobs(self, limit: int = 100) -> list[BatchJob]:
        """The newest jobs first."""
        async with self._database.read() as conn:
            return await self._store.newest(conn, min(max(limit, 1), MAX_LIST))

    async def cancel(self, job_id: str) -> BatchJob:
        """Ask the job to stop at its next shard boundary (it ends ``cancelled``).

        Raises:
            NotFound: no job has this id.
            FailedPrecondition: the job is not running in this control plane.
        """
        job = await self.get(job_id)
        process = self._processes.get(job_id)
        if process is None or process.returncode is not None:
            raise FailedPrecondition(
                f"batch job {job_id!r} is {job.progress.state.value}, not running"
            )
        process.send_signal(signal.SIGTERM)
        return job

    async def resume(self, job_id: str) -> BatchJob:
        """Continue a job that did not succeed, from its committed shards.

        Raises:
            NotFound: no job has this id.
            FailedPrecondition: the job is running or succeeded, or its fingerprint no longer
                matches (the message names the model, input or options that changed).
        """
        job = await self.get(job_id)
        watcher = self._watchers.get(job_id)
        if watcher is not None and job.progress.state in FINAL_STATES:
            # The process has written its last progress; let its watcher finish recording it.
            await asyncio.shield(watcher)
            job = await self.get(job_id)
        if (
            job_id in self._processes
            or job_id in self._resuming
            or job.progress.state is JobState.SUCCEEDED
        ):
            raise FailedPrecondition(
                f"batch job {job_id!r} is {job.progress.state.value} or resuming; only a "
                "failed, cancelled or interrupted job can resume"
            )
        # NOTE: marked before the first await below: two resumes at once both passed the
        # check above and started two processes on one output folder
        self._resuming.add(job_id)
        try:
            return await self._resume(job)
        finally:
            self._resuming.discard(job_id)

    async def _resume(self, job: BatchJob) -> BatchJob:
        """:meth:`resume` once the job is known to be resumable and marked as resuming."""
        job_id = job.id
        output = self.resolve(job.output, "output")
        description = read_description(output)
        if description is None:
            raise FailedPrecondition(f"output {job.output!r} has no job.json: cannot resume")
        await asyncio.to_thread(self._check_fingerprint, job, description)
        async with self._database.write() as conn:
            await self._store.set_progress(
                conn, job_id, msgspec.structs.replace(job.progress, state=JobState.PENDING), _now()
            )
        await self._start(job)
        return await self.get(job_id)

    def _check_fingerprint(self, job: BatchJob, description: JobDescription) -> None:
        """Refuse a resume whose model artifact, input or options changed."""
        onnx = Path(description.onnx_path)
        sha = hashlib.sha256(onnx.read_bytes()).hexdigest() if onnx.is_file() else "missing"
        try:
            files = list_inputs(Path(description.input))
        except InvalidArgument as error:
            raise FailedPrecondition(f"cannot resume batch job {job.id!r}: {error}") from None
        parts = fingerprint_parts(
            description.model, description.version, sha, files, description.options
        )
        changed = [name for name, value in parts.items() if description.parts.get(name) != value]
        if changed or description.fingerprint != job.fingerprint:
            what = ", ".join(changed) or "job.json"
            raise FailedPrecondition(
                f"cannot resume batch job {job.id!r}: its fingerprint no longer matches "
                f"({what} changed since it was submitted)"
            )

    async def wait(self, job_id: str) -> BatchJob:
        """The job once its process ended (at once when it is not running)."""
        task = self._watchers.get(job_id)
        if task is not None:
            await asyncio.shield(task)
        return await self.get(job_id)

    async def recover(self) -> None:
        """Mark the jobs a previous control plane left running as failed (they can resume)."""
        async with self._database.write() as conn:
            for job in await self._store.active(conn):
                error = "the control plane stopped while the job ran; resume it"
                progress = msgspec.structs.replace(job.progress, state=JobState.FAILED, error=error)
                await self._store.set_progress(conn, job.id, progress, _now())

    async def stop(self) -> None:
        """Cancel every job process of this control plane and wait for them."""
        self._stopping = True
        for process in list(self._processes.values()):
            if process.returncode is None:
                process.send_signal(signal.SIGTERM)
        await asyncio.gather(*self._watchers.values(), return_exceptions=True)


__all__ = ["MAX_LIST", "BatchService"]
