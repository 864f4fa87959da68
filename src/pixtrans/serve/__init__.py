"""`pixtrans serve`: a web page and REST API for trained models (see docs/serve.md).

    from pixtrans.serve import load_models, create_app
    app = create_app(load_models(["runs/demo"]))      # any ASGI server runs it

`serve(...)` is what the command runs: it loads the models, prints the URL and runs uvicorn.
"""

from __future__ import annotations

from pathlib import Path

from pixtrans import PixtransError
from pixtrans.serve.app import create_app
from pixtrans.serve.models import ServedModel
from pixtrans.serve.uploads import Limits

DEMO_PRESET = "pix2pix/demo"  # what `pixtrans train` trains by default

__all__ = ["Limits", "ServedModel", "create_app", "load_models", "serve"]


def _model_name(path: Path, taken: set[str]) -> str:
    """'runs/facades' -> 'facades'; an export folder is named after its run; repeats get -2, -3."""
    path = path.resolve()
    base = path.parent.name if path.name == "export" else path.stem if path.is_file() else path.name
    base = "".join(c if c.isalnum() or c in "-_." else "-" for c in base) or "model"
    name, k = base, 2
    while name in taken:
        name, k = f"{base}-{k}", k + 1
    return name


def load_models(paths, device: str = "cpu", n_examples: int = 6) -> dict[str, ServedModel]:
    models: dict[str, ServedModel] = {}
    for p in paths:
        path = Path(p)
        name = _model_name(path, set(models))
        models[name] = ServedModel.load(path, name, device=device, n_examples=n_examples)
    if not models:
        raise PixtransError("no models to serve; pass run folders or exports, or --demo")
    return models


def demo_model(run_dir: str | Path = "runs/demo") -> Path:
    """The demo run's export, training the built-in demo preset first when there is none."""
    from pixtrans.artifacts.exports import is_complete_export
    from pixtrans.artifacts.runs import RunFolder

    run = Path(run_dir)
    export = RunFolder(run).export
    if is_complete_export(export):
        print(f"demo: serving {export}")
        return export
    from pixtrans.config import load_config
    from pixtrans.runtime import tune_malloc
    from pixtrans.training.loop import fit  # the demo model has to be trained: the only training here

    print(
        f"demo: no model at {export} yet: training the built-in demo ({DEMO_PRESET}, about 3-4 min on a CPU)"
    )
    tune_malloc()
    fit(load_config(DEMO_PRESET, [f"run_dir={run}"]))
    return export


def serve(
    paths,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    device: str = "cpu",
    limits: Limits | None = None,
    log_level: str = "warning",
) -> None:
    import socket

    import uvicorn

    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        try:  # before loading anything: a busy port is the commonest start-up failure
            probe.bind((host, port))
        except OSError as e:
            raise PixtransError(
                f"cannot listen on {host}:{port} ({e.strerror}); choose another port with --port"
            ) from None
    models = load_models(paths, device=device)
    app = create_app(models, limits=limits)
    shown = "127.0.0.1" if host in ("0.0.0.0", "") else host
    print(f"serving {', '.join(models)} at http://{shown}:{port}/  (API docs: http://{shown}:{port}/docs)")
    print("press Ctrl+C to stop")
    uvicorn.run(app, host=host, port=port, log_level=log_level)
