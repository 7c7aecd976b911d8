"""`affect export onnx`, `affect doctor` and `affect serve`: shipping, checking and serving the models."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.table import Table
from rich.text import Text

from affect_sdk.cli.common import (DeviceOption, app, console, err_console, export_app, friendly, print_json_line,
                                  tagged)


@export_app.command("onnx")
@friendly
def export_onnx(
    out: Path = typer.Option(..., "--out", help="Folder for <model>.onnx (affect_sdk/weights to ship them)."),
    model: Optional[list[str]] = typer.Option(None, "--model", help="A registered model (repeatable); "
                                              "default: every registered torch model."),
    data: Optional[Path] = typer.Option(None, "--data", help="FER+ folder for the int8 twins' calibration and "
                                        "check faces (default: ../shared/data/ferplus beside the checkout)."),
) -> None:
    """Export shipped models to ONNX with a dynamic batch, each checked against its torch model (int8 twins: on
    FER+ Valid faces)."""
    from affect_sdk.export import TOLERANCE, export_model, exportable_models

    names = model or [spec.name for spec in exportable_models()]
    if not names:
        err_console.print("no torch models are registered; nothing to export.")
        raise typer.Exit(2)
    table = Table(title=f"ONNX export (torch vs onnxruntime: float32 max abs diff <= {TOLERANCE:g}; int8 twins: "
                        "the same top class on >= 98 % of FER+ Valid faces)")
    for col in ("model", "file", "sha256", "max abs diff", "int8: same top class"):
        table.add_column(col, overflow="fold")
    rows = []
    for name in names:
        done = export_model(name, out, data)
        agreement = "" if done.agreement is None else f"{done.agreement:.2%}"
        # Text cells: a path such as "out[1]/x.onnx" is printed as it is, never read as console markup
        table.add_row(Text(name), Text(str(done.path)), done.sha256, f"{done.max_abs_diff:.2g}", agreement)
        rows.append({"model": name, "onnx": done.path.name, "path": str(done.path), "onnx_sha256": done.sha256,
                     "source_sha256": done.source_sha256, "max_abs_diff": done.max_abs_diff,
                     "quantization": done.quantization, "agreement": done.agreement})
    err_console.print(table)
    err_console.print("Ship a file by setting its ModelSpec's onnx=<file> and onnx_sha256=<sha256> "
                      "in affect_sdk/registry.py.", highlight=False)
    print_json_line({"exported": rows})


# ---------------------------------------------------------------- doctor
@app.command()
@friendly
def doctor(as_json: bool = typer.Option(False, "--json", help="Print one JSON object instead of tables.")) -> None:
    """What this machine offers: versions, cameras, microphones, audio stack, models and their checksums."""
    from affect_sdk.doctor import report

    info = report()
    if as_json:
        print_json_line(info)
        return
    versions = Table(title="versions", show_header=False)
    for name, version in info["versions"].items():
        versions.add_row(Text(name), Text(version) if version else Text("not installed", style="red"))
    console.print(versions)
    cams = info["cameras"]
    console.print(f"cameras: {', '.join(map(str, cams)) if cams else 'none found (indices 0-4 probed)'}", markup=False)
    if info["audio_problem"]:
        console.print(f"microphones: {info['audio_problem']}", markup=False)
    elif not info["audio_inputs"]:
        console.print("microphones: none found")
    else:
        for dev in info["audio_inputs"]:
            console.print(f"microphone {dev['index']}: {dev['name']} ({dev['channels']} ch, {dev['rate']:.0f} Hz)",
                          markup=False)
    console.print(f"pulseaudio: {info['pulseaudio']}", markup=False)
    models = Table(title="models")
    for col in ("name", "task", "file", "checksum"):
        models.add_column(col)
    for row in info["models"]:
        state = Text(row["state"], style="green" if row["state"] == "ok" else "red")
        models.add_row(Text(row["name"]), Text(row["task"]), Text(row["file"]), state)
    console.print(models)


@app.command()
@friendly
def serve(
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on; beyond loopback a token is required."),
    port: int = typer.Option(8765, "--port", help="TCP port (0: any free port)."),
    token: Optional[str] = typer.Option(None, "--token", envvar="AFFECT_TOKEN", show_envvar=True,
                                        help="Clients must send it (Bearer header or ?token=)."),
    workers: int = typer.Option(2, "--workers", min=1, help="Analysis threads shared by all connections."),
    max_connections: int = typer.Option(8, "--max-connections", min=1, help="Clients served at once."),
    backend: Optional[str] = typer.Option(None, "--backend", help="Inference backend: torch or onnxruntime."),
    device: DeviceOption = None,
) -> None:
    """Serve face + voice affect over a WebSocket (/v1/stream), with a browser client at /."""
    try:  # the serve code and its dependencies load only here: nothing else in affect-sdk needs them
        from affect_sdk.serve.app import serve as run_server
    except ImportError as exc:
        missing = (exc.name or "a dependency").split(".")[0]
        err_console.print(tagged("error:", "red", f"affect serve needs the 'serve' extra ({missing} is missing): "
                                  "pip install 'affect-sdk[serve]'."), highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None
    run_server(host, port, token, workers=workers, max_connections=max_connections, backend=backend, device=device,
               say=lambda text: err_console.print(text, markup=False, highlight=False, soft_wrap=True))
