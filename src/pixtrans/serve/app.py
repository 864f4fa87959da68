"""`pixtrans serve`: the FastAPI app. Pages (static/), the REST API under them, and the limits a
public server needs.

    GET  /                          the page (pick a model; draw, convert or edit labels)
    GET  /health                    {"status": "ok", per model: waiting / running / done}
    GET  /models                    every model with its inputs, palette, directions, styles
    POST /translate/{model}         image (+ mode, seed, direction) or label + instance
                                    (+ photo, styles, seed) -> PNG
    GET  /models/{model}/examples/{i}/{file}   an example input from the model's dataset
    GET  /docs                      OpenAPI page, served from the package (works offline)

Nets never run on the event loop: each model has a worker thread and a bounded queue
(serve/queue.py), so /health answers while a model runs; a full queue answers 503, a request
that waits or runs past the timeout 504, a bad upload a 4xx with one line ({"detail": ...}).
"""

from __future__ import annotations

import asyncio
import json
import shutil
import tempfile
import time
from collections.abc import Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any

import numpy as np
from fastapi import FastAPI, File, Form, HTTPException, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool
from starlette.formparsers import MultiPartParser

import pixtrans
from pixtrans import PixtransError
from pixtrans.serve.models import ServedModel, npy_bytes, png_bytes
from pixtrans.serve.queue import ModelQueue, QueueFull
from pixtrans.serve.uploads import (
    Decoder,
    Limits,
    UploadError,
    check_label_map,
    check_same_size,
)

STATIC = Path(__file__).parent / "static"


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"detail": message}, status_code=status)


class BodyLimit:
    """ASGI middleware: refuse a POST whose declared body is over the limit before reading it
    (413), or that declares no length (411); h11 holds the client to the length it declared."""

    def __init__(self, app, max_bytes: int):
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and scope["method"] in ("POST", "PUT"):
            headers = dict(scope["headers"])
            length = headers.get(b"content-length")
            response = None
            if length is None:
                response = _error(411, "send the request with a Content-Length header")
            elif not length.isdigit() or int(length) > self.max_bytes:
                response = _error(
                    413,
                    f"request body of {length.decode(errors='replace')} bytes is over the limit of "
                    f"{self.max_bytes:,} (serve --max-upload-mb raises it)",
                )
            if response is not None:
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def _image_runner(model: ServedModel):
    def run(payloads: list[dict]) -> list[np.ndarray]:
        # one batch shares (direction, mode, seed, size): queue.py groups them by batch_key
        first = payloads[0]
        translator = model.translator(first["direction"])
        outs = translator(
            [p["image"] for p in payloads], mode=first["mode"], seed=first["seed"], batch_size=len(payloads)
        )
        return [_to_uint8(o) for o in outs]

    return run


def _label_runner(model: ServedModel):
    def run(payloads: list[dict]) -> list[np.ndarray]:
        out = []
        for p in payloads:
            photo = None
            if p["photo"] is not None:
                from PIL import Image

                photo = Image.fromarray(p["photo"])
            img = model.labels(p["label"], p["instance"], image=photo, styles=p["styles"], seed=p["seed"])
            out.append(np.asarray(img))
        return out

    return run


def _to_uint8(arr: np.ndarray) -> np.ndarray:
    if arr.dtype == np.uint16:
        return (arr >> 8).astype(np.uint8)
    if arr.dtype.kind == "f":
        return np.rint(np.clip(arr, 0, 1) * 255).astype(np.uint8)
    return arr


def _parse_styles(text: str | None) -> dict[int, int] | None:
    if not text:
        return None
    try:
        raw = json.loads(text)
        if not isinstance(raw, Mapping):
            raise ValueError
        return {int(k): int(v) for k, v in raw.items()}
    except (ValueError, TypeError):
        raise UploadError(
            422, 'styles: expected a JSON object of instance id -> cluster index, e.g. {"26001": 3}'
        ) from None


def create_app(
    models: Mapping[str, ServedModel],
    *,
    limits: Limits | None = None,
    tmp_dir: str | Path | None = None,
) -> FastAPI:
    """The app serving `models` (name -> ServedModel) under `limits`. Uploads are decoded in
    `tmp_dir` (a fresh temporary folder by default, removed when the app stops)."""
    limits = limits or Limits()
    if not models:
        raise PixtransError("no models to serve; pass a run folder or export (or --demo)")
    own_tmp = tmp_dir is None
    tmp = Path(tempfile.mkdtemp(prefix="pixtrans-serve-") if own_tmp else tmp_dir)
    tmp.mkdir(parents=True, exist_ok=True)
    decoder = Decoder(limits, tmp)
    # multipart parts stay in memory up to the upload cap instead of spilling to the system's
    # temporary folder: the server writes only under its own folder
    MultiPartParser.spool_max_size = max(MultiPartParser.spool_max_size, limits.max_upload_bytes + 1)

    queues = {
        name: ModelQueue(
            name,
            _label_runner(m) if m.labels is not None else _image_runner(m),
            maxsize=limits.queue_size,
            max_batch=limits.max_batch,
        )
        for name, m in models.items()
    }

    @asynccontextmanager
    async def lifespan(app):
        yield
        for q in queues.values():
            await run_in_threadpool(q.close)
        if own_tmp:
            shutil.rmtree(tmp, ignore_errors=True)

    app = FastAPI(
        title="pixtrans",
        version=pixtrans.__version__,
        description="Image-to-image translation with GANs: draw, upload or edit labels and get the "
        'translation. Every endpoint answers errors as {"detail": one line}.',
        docs_url=None,  # FastAPI's own page loads Swagger UI from a CDN; ours is below
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.models = models
    app.state.queues = queues
    app.state.limits = limits
    app.state.tmp_dir = tmp
    app.add_middleware(BodyLimit, max_bytes=limits.max_request_bytes)

    @app.exception_handler(UploadError)
    async def upload_error(request: Request, exc: UploadError):
        return _error(exc.status, exc.message)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError):
        # FastAPI's answer is a list of dicts; the page shows one line
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ())[1:]) or "request"
        return _error(422, f"{where}: {first.get('msg', 'invalid request')}")

    def get_model(name: str) -> ServedModel:
        if name not in models:
            raise HTTPException(404, f"no model '{name}'; serving: {', '.join(models)}")
        return models[name]

    async def run_job(name: str, payload: dict, batch_key) -> np.ndarray:
        try:
            future = queues[name].submit(payload, batch_key)
        except QueueFull as e:
            raise HTTPException(503, str(e), headers={"Retry-After": "1"}) from None
        try:
            return await asyncio.wait_for(asyncio.wrap_future(future), limits.timeout_s)
        except (asyncio.TimeoutError, TimeoutError):
            future.cancel()  # not started yet: the worker skips it
            raise HTTPException(
                504, f"model '{name}' did not answer within {limits.timeout_s:g} s (serve --timeout)"
            ) from None
        except PixtransError as e:
            raise HTTPException(422, str(e)) from None
        except Exception as e:  # noqa: BLE001 - one line, and the server keeps serving
            raise HTTPException(500, f"{type(e).__name__}: {' '.join(str(e).split())[:300]}") from None

    # ------------------------------------------------------------------------------------------
    @app.get("/", include_in_schema=False)
    async def index():
        return FileResponse(STATIC / "index.html")

    @app.get("/health", summary="Liveness and per-model queue state")
    async def health() -> dict[str, Any]:
        return {
            "status": "ok",
            "version": pixtrans.__version__,
            "models": {
                n: {"waiting": q.waiting, "running": q.running, "done": q.done, "batches": q.batches}
                for n, q in queues.items()
            },
        }

    @app.get("/models", summary="The models served, with each model's inputs")
    async def list_models() -> dict[str, Any]:
        return {
            "models": [m.describe() for m in models.values()],
            "limits": {
                "max_upload_bytes": limits.max_upload_bytes,
                "max_pixels": limits.max_pixels,
                "queue_size": limits.queue_size,
                "timeout_s": limits.timeout_s,
            },
        }

    @app.get("/models/{model}/examples/{index}/{file}", summary="One file of an example input")
    async def example(model: str, index: int, file: str):
        m = get_model(model)
        try:
            data, kind = m.example_file(index, file)
        except KeyError as e:
            raise HTTPException(404, str(e.args[0])) from None
        media = "image/png" if kind == "png" else "application/octet-stream"
        return Response(data, media_type=media, headers={"Cache-Control": "max-age=3600"})

    @app.post(
        "/decode/ids",
        summary="A class-id or instance-id map (PNG, TIFF or .npy) as .npy, checked like a translation's",
        response_class=Response,
        responses={200: {"content": {"application/octet-stream": {}}, "description": "HxW .npy"}},
    )
    async def decode_ids(file: Annotated[UploadFile, File(description="single-channel id map")]):
        # the editor reads id maps through this: browsers decode 16-bit PNGs to 8 bits
        data = await file.read()
        ids = await run_in_threadpool(decoder.ids, data, "file")
        dtype = np.uint8 if ids.max(initial=0) < 256 and ids.min(initial=0) >= 0 else np.uint16
        if ids.min(initial=0) < 0 or ids.max(initial=0) > 65535:
            raise UploadError(422, "file: ids must lie in 0..65535")
        return Response(npy_bytes(ids.astype(dtype)), media_type="application/octet-stream")

    @app.post(
        "/translate/{model}",
        summary="Translate an image, or a label map (+ instance map) for pix2pixHD",
        response_class=Response,
        responses={200: {"content": {"image/png": {}}, "description": "the translation as PNG"}},
    )
    async def translate(
        model: str,
        image: Annotated[UploadFile | None, File(description="image models: the input image")] = None,
        mode: Annotated[str, Form(description="image models: paper | eval")] = "paper",
        seed: Annotated[int, Form(description="dropout noise (paper mode) or random styles (pix2pixHD)")] = 0,
        direction: Annotated[
            str | None, Form(description="two-generator models: G_ab | G_ba (or ab | ba)")
        ] = None,
        label: Annotated[UploadFile | None, File(description="pix2pixHD: class-id map")] = None,
        instance: Annotated[UploadFile | None, File(description="pix2pixHD: instance-id map")] = None,
        photo: Annotated[UploadFile | None, File(description="pix2pixHD: photo to take styles from")] = None,
        styles: Annotated[str | None, Form(description='pix2pixHD: JSON {"instance id": cluster}')] = None,
    ):
        m = get_model(model)
        t0 = time.perf_counter()
        files = {"image": image, "label": label, "instance": instance, "photo": photo}
        data = {}
        for field, up in files.items():
            if up is not None:
                if up.size is not None and up.size > limits.max_upload_bytes:
                    raise UploadError(
                        413,
                        f"{field}: {up.size:,} bytes is over the upload limit of {limits.max_upload_bytes:,}",
                    )
                data[field] = await up.read()
        if m.labels is None:
            if "image" not in data:
                raise UploadError(422, f"model '{model}' translates images: send the file as field 'image'")
            if mode not in ("paper", "eval"):
                raise UploadError(422, f"mode: '{mode}' is not one of paper, eval")
            try:
                translator = m.translator(direction)
            except PixtransError as e:
                raise UploadError(422, f"direction: {e}") from None
            arr = await run_in_threadpool(decoder.image, data["image"], "image")
            payload = {"image": arr, "mode": mode, "seed": seed, "direction": translator.name}
            key = (translator.name, mode, seed, arr.shape[:2])
        else:
            payload = await run_in_threadpool(_label_payload, m, decoder, data, styles, seed, model)
            key = None
        out = await run_job(model, payload, key)
        body = await run_in_threadpool(png_bytes, out)
        ms = (time.perf_counter() - t0) * 1000
        return Response(body, media_type="image/png", headers={"X-Pixtrans-Ms": f"{ms:.1f}"})

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    _offline_docs(app)
    return app


def _label_payload(m: ServedModel, decoder: Decoder, data: dict, styles: str | None, seed: int, name: str):
    lt = m.labels
    if "label" not in data:
        raise UploadError(422, f"model '{name}' synthesises from label maps: send field 'label'")
    label = decoder.ids(data["label"], "label")
    check_label_map(label, lt.inputs.classes, lt.inputs.dontcare_label)
    inst = None
    if lt.use_instance:
        if "instance" not in data:
            raise UploadError(422, f"model '{name}' was trained with instance maps: send field 'instance'")
        inst = decoder.ids(data["instance"], "instance")
        check_same_size(label, inst, "the label map", "instance")
    photo = None
    if "photo" in data:
        if lt.E is None:
            raise UploadError(
                422, f"photo: model '{name}' has no feature encoder to take styles from a photo"
            )
        photo = decoder.photo(data["photo"], "photo")
        check_same_size(label, photo, "the label map", "photo")
    parsed = _parse_styles(styles)
    if parsed and lt.E is None:
        raise UploadError(422, f"styles: model '{name}' has no feature encoder, so no styles to choose")
    return {"label": label, "instance": inst, "photo": photo, "styles": parsed, "seed": seed}


def _offline_docs(app: FastAPI) -> None:
    """Swagger UI from the fastapi-offline package's copy when it is installed, else a small page
    of our own that lists the endpoints from /openapi.json: /docs never needs the internet."""
    try:
        import fastapi_offline
    except ImportError:
        swagger = None
    else:
        swagger = Path(fastapi_offline.__file__).parent / "static"
        if not (swagger / "swagger-ui-bundle.js").is_file():
            swagger = None
    if swagger is not None:
        from fastapi.openapi.docs import get_swagger_ui_html

        app.mount("/docs-static", StaticFiles(directory=swagger), name="docs-static")

        @app.get("/docs", include_in_schema=False)
        async def docs():
            return get_swagger_ui_html(
                openapi_url="/openapi.json",
                title="pixtrans API",
                swagger_js_url="/docs-static/swagger-ui-bundle.js",
                swagger_css_url="/docs-static/swagger-ui.css",
                swagger_favicon_url="/docs-static/favicon.png",
            )
    else:

        @app.get("/docs", include_in_schema=False)
        async def docs():
            return FileResponse(STATIC / "api.html")

    @app.get("/redoc", include_in_schema=False)
    async def redoc():
        return RedirectResponse("/docs")
