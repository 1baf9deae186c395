"""The FastAPI app: the page, the job API the page uses, and ``POST /api/restore`` for scripts."""
from __future__ import annotations

import asyncio
import logging
import shutil
import tempfile
import threading
import zipfile
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from dfdnet.app.service import (REQUEST_FIELDS, JobQueue, ModelCache, QueueFull, RequestError, available_models,
                                request_options, run_job)
from dfdnet.app.sessions import SessionStore
from dfdnet.app.settings import AppSettings
from dfdnet.pipeline.options import RestoreOptions
from dfdnet.utils.video_io import is_video_file

logger = logging.getLogger(__name__)

COOKIE = 'dfdnet_session'
STATIC = Path(__file__).with_name('static')
FORM_OVERHEAD = 64 * 1024  # multipart headers and option fields around the file


def error(message: str, status: int) -> JSONResponse:
    """The JSON answer to a request that cannot be served: ``{"error": message}``."""
    return JSONResponse({'error': message}, status_code=status)


class _BodyTooLarge(Exception):
    pass


class UploadLimit:
    """ASGI middleware: answer 413 to a request body over ``limit`` bytes, whether its
    Content-Length says so or its bytes show it; the rest of it is never read."""

    def __init__(self, app, limit: int, message: str):
        self.app, self.limit, self.message = app, limit, message

    async def __call__(self, scope, receive, send):
        if scope['type'] != 'http':
            return await self.app(scope, receive, send)
        length = dict(scope['headers']).get(b'content-length', b'')
        if length.isdigit() and int(length) > self.limit:
            return await error(self.message, 413)(scope, receive, send)
        received = 0

        async def counted():
            nonlocal received
            message = await receive()
            received += len(message.get('body', b''))
            if received > self.limit:
                raise _BodyTooLarge
            return message

        try:
            await self.app(scope, counted, send)
        except _BodyTooLarge:
            await error(self.message, 413)(scope, receive, send)


def create_app(settings: AppSettings | None = None, options: RestoreOptions | None = None, loader=None) -> FastAPI:
    """The app. settings: how it serves; options: the restore options a request starts from (its
    form fields ``REQUEST_FIELDS`` and ``model`` change them); loader: builds the ``PhotoRestorer``
    (default ``PhotoRestorer.from_options``)."""
    settings = settings or AppSettings()
    options = options or RestoreOptions()
    catalogue = available_models(options)
    models = ModelCache(loader)
    queue = JobQueue(settings.jobs, settings.queue_size)
    root = Path(tempfile.mkdtemp(prefix='dfdnet-app-', dir=settings.work_dir))
    store = SessionStore(root, settings.session_minutes * 60)
    too_large = f'the upload is larger than the limit of {settings.max_upload_mb:g} MB'

    def preload():
        try:
            models.get(request_options(options, {}, catalogue))
        except Exception as exc:  # the state says it; the first job reports it again
            logger.error('the model cannot be loaded: %s', exc)

    async def sweep_forever():
        while True:
            await asyncio.sleep(min(60.0, store.ttl_s / 2))
            store.sweep()

    @asynccontextmanager
    async def lifespan(_app):
        if settings.preload and catalogue:
            threading.Thread(target=preload, name='dfdnet-preload', daemon=True).start()
        sweeper = asyncio.create_task(sweep_forever())
        yield
        sweeper.cancel()
        queue.shutdown()
        store.close()

    app = FastAPI(title='DFDNet', lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.add_middleware(UploadLimit, limit=settings.max_upload_bytes + FORM_OVERHEAD, message=too_large)
    app.mount('/static', StaticFiles(directory=STATIC), name='static')
    app.state.settings, app.state.options, app.state.catalogue = settings, options, catalogue
    app.state.store, app.state.queue, app.state.models = store, queue, models

    @app.exception_handler(Exception)
    async def internal_error(_request, exc):
        logger.error('unexpected error', exc_info=exc)
        return error('an internal error stopped the request (the server log has the details)', 500)

    @app.exception_handler(RequestError)
    async def request_error(_request, exc: RequestError):
        return error(str(exc), exc.status)

    def remember(response: Response, session) -> Response:
        response.set_cookie(COOKIE, session.token, httponly=True, samesite='strict')
        return response

    async def accept(request: Request, field: str):
        """Parse the form, save its file in a new job of the caller's session and queue it."""
        store.sweep()
        try:
            form = await request.form(max_files=1, max_fields=len(REQUEST_FIELDS) + 4)
        except HTTPException as exc:
            raise RequestError(f'the request is not a form that can be read: {exc.detail}') from exc
        upload = form.get(field)
        if not isinstance(upload, UploadFile):
            raise RequestError(f"no file in the form field '{field}' (send multipart/form-data)")
        if upload.size is not None and upload.size > settings.max_upload_bytes:
            raise RequestError(too_large, 413)
        job_options = request_options(options, form, catalogue)
        session = store.get_or_create(request.cookies.get(COOKIE))
        job = session.new_job(upload.filename, 'video' if is_video_file(upload.filename or '') else 'photo')
        with job.upload.open('wb') as out:
            await run_in_threadpool(shutil.copyfileobj, upload.file, out)
        await upload.close()
        try:
            future = queue.submit(job, lambda j: run_job(j, job_options, models))
        except QueueFull as exc:
            session.drop_job(job)
            raise RequestError(str(exc), 503) from exc
        return session, job, future

    def find_job(request: Request, job_id: str):
        session = store.get(request.cookies.get(COOKIE))
        job = session.jobs.get(job_id) if session else None
        if job is None:
            raise RequestError('no such job in this session', 404)
        return session, job

    @app.get('/', include_in_schema=False)
    async def page():
        return FileResponse(STATIC / 'index.html')

    @app.get('/api/status')
    async def status():
        return {'model': models.state, 'models': {name: m[2] for name, m in catalogue.items()},
                'defaults': {name: getattr(options, name) for name in REQUEST_FIELDS},
                'choices': {'color_fix': _choices('color_fix'), 'paste_mask': _choices('paste_mask')},
                'max_upload_mb': settings.max_upload_mb, 'max_input_megapixels': options.max_input_megapixels,
                'running': queue.running, 'waiting': queue.waiting}

    @app.post('/api/jobs', status_code=202)
    async def submit(request: Request):
        session, job, _ = await accept(request, 'file')
        return remember(JSONResponse(job.to_dict(queue.position(job)), status_code=202), session)

    @app.get('/api/jobs/{job_id}')
    async def job_state(request: Request, job_id: str):
        _, job = find_job(request, job_id)
        return job.to_dict(queue.position(job))

    @app.get('/api/jobs/{job_id}/{name}')
    async def job_file(request: Request, job_id: str, name: str):
        _, job = find_job(request, job_id)
        if name not in job.files.values():
            raise RequestError(f'no file {name[:40]!r} in this job', 404)
        return FileResponse(job.folder / name)

    @app.get('/api/results.zip')
    async def results_zip(request: Request):
        session = store.get(request.cookies.get(COOKIE))
        done = [job for job in (session.jobs.values() if session else ()) if job.state == 'done']
        if not done:
            raise RequestError('no restored results in this session yet', 404)
        archive = await run_in_threadpool(_write_zip, session.folder / 'results.zip', done)
        return FileResponse(archive, media_type='application/zip', filename='dfdnet_results.zip')

    @app.post('/api/restore')
    async def restore(request: Request):
        session, job, future = await accept(request, 'image')
        try:
            await asyncio.wrap_future(future)
            if job.state != 'done':
                return error(job.message, job.status)
            video = job.files.get('video')
            path = job.folder / (video or job.files['restored'])
            return Response(await run_in_threadpool(path.read_bytes), media_type='video/mp4' if video else 'image/png',
                            headers={'X-DFDNet-Faces': str(job.info.get('faces', 0))})
        finally:  # the job's files go once it has finished, even if the caller went away
            future.add_done_callback(lambda _future: session.drop_job(job))

    return app


def _choices(name: str) -> list:
    from dataclasses import fields

    return list(next(f for f in fields(RestoreOptions) if f.name == name).metadata['choices'])


def _write_zip(path: Path, jobs) -> Path:
    """A zip of the restored file of each job (``<name>_restored.png`` or ``.mp4``)."""
    with zipfile.ZipFile(path, 'w', zipfile.ZIP_STORED) as archive:
        for job in jobs:
            stored = job.files.get('video') or job.files['restored']
            archive.write(job.folder / stored, f'{job.id[:6]}_{Path(job.name).stem}_restored{Path(stored).suffix}')
    return path
