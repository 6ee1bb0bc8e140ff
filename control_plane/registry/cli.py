"""``modelyard models register|list|get|transition|card|approve|lineage``.

Every command speaks the registry's REST API: to ``--url``, or in-process over the local store
(:mod:`control_plane.cli_client`). Changes need an API token (``--token`` or
``control_plane.token``).
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import click
import msgspec

from control_plane.cli_client import TOKEN_OPTION, URL_OPTION, echo_json, request
from control_plane.monitoring.samples import read_sample
from control_plane.registry.card_rules import minimal_card_data
from control_plane.registry.service import fidelity_figures
from modelyard.enums import ModelStage

URL = URL_OPTION
TOKEN = TOKEN_OPTION
STAGES = click.Choice([s.value for s in ModelStage])


def _json_file(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise click.BadParameter(f"{path} is not valid JSON: {error}") from None


def _conversion(directory: Path) -> dict[str, Any]:
    """ONNX bytes, signature and fidelity figures from a `modelyard convert` output folder."""
    # Imported here: the converters package pulls in every training framework.
    from converters.cli import ONNX_FILE, REPORT_FILE
    from converters.report import FidelityReport

    report = _json_file(directory / REPORT_FILE)
    try:
        fidelity = msgspec.convert(report["fidelity"], FidelityReport)
    except (KeyError, TypeError, msgspec.ValidationError) as error:
        raise click.BadParameter(
            f"{directory / REPORT_FILE}: no fidelity report ({error})"
        ) from None
    return {
        "onnx": base64.b64encode((directory / ONNX_FILE).read_bytes()).decode(),
        "signature": report.get("signature"),
        "fidelity": fidelity_figures(fidelity),
    }


@click.group("models")
def models() -> None:
    """The model registry: versions, stages, model cards, approvals, lineage."""


@models.command("register")
@click.argument("name")
@click.option("--onnx", "onnx_path", type=click.Path(exists=True, path_type=Path), default=None)
@click.option(
    "--conversion",
    "conversion_dir",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=None,
    help="Output folder of `modelyard convert` (model.onnx + signature and fidelity).",
)
@click.option("--card", "card_path", type=click.Path(exists=True, path_type=Path), required=True)
@click.option(
    "--lineage", "lineage_path", type=click.Path(exists=True, path_type=Path), required=True
)
@click.option("--signature", "signature_path", type=click.Path(exists=True, path_type=Path))
@click.option("--description", default="")
@click.option(
    "--reference-sample",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Training sample (CSV/Parquet): monitoring stores the version's reference profile.",
)
@click.option("--score-column", default=None, help="Column of the sample holding the score.")
@URL
@TOKEN
def register(
    name: str,
    onnx_path: Path | None,
    conversion_dir: Path | None,
    card_path: Path,
    lineage_path: Path,
    signature_path: Path | None,
    description: str,
    reference_sample: Path | None,
    score_column: str | None,
    url: str | None,
    token: str | None,
) -> None:
    """Register the next version of NAME from --onnx or --conversion, a card and lineage (JSON)."""
    body: dict[str, Any] = {
        "card": _json_file(card_path),
        "lineage": _json_file(lineage_path),
        "description": description,
    }
    if conversion_dir is not None:
        body |= _conversion(conversion_dir)
    elif onnx_path is not None:
        body["onnx"] = base64.b64encode(onnx_path.read_bytes()).decode()
    else:
        raise click.UsageError("give --onnx FILE or --conversion DIR")
    if signature_path is not None:
        body["signature"] = _json_file(signature_path)
    if reference_sample is not None:
        sample = read_sample(reference_sample, score_column)
        body["reference_sample"], body["reference_score"] = sample["columns"], sample["score"]
    echo_json(request(url, token, "POST", f"/v1/models/{name}/versions", body=body))


@models.command("list")
@click.option("--name", default=None, help="Only versions of this model.")
@click.option("--stage", type=STAGES, default=None, help="Only versions in this stage.")
@URL
@TOKEN
def list_models(name: str | None, stage: str | None, url: str | None, token: str | None) -> None:
    """List models (latest and Production versions), or versions filtered by name/stage."""
    if name is None and stage is None:
        echo_json(request(url, token, "GET", "/v1/models"))
        return
    params = {"name": name, "stage": stage}
    echo_json(request(url, token, "GET", "/v1/models/versions", params=params))


@models.command("get")
@click.argument("name")
@click.argument("version", type=int, required=False)
@click.option("--stage", type=STAGES, default=None, help="Latest version in this stage.")
@URL
@TOKEN
def get(
    name: str, version: int | None, stage: str | None, url: str | None, token: str | None
) -> None:
    """Show a version with its card (default: the latest; --stage Production: the champion)."""
    if version is not None:
        path = f"/v1/models/{name}/versions/{version}"
        echo_json(request(url, token, "GET", path))
        return
    params = {"stage": stage}
    echo_json(request(url, token, "GET", f"/v1/models/{name}/latest", params=params))


@models.command("transition")
@click.argument("name")
@click.argument("version", type=int)
@click.argument("stage", type=STAGES)
@click.option("--reason", default="")
@URL
@TOKEN
def transition(
    name: str, version: int, stage: str, reason: str, url: str | None, token: str | None
) -> None:
    """Move NAME VERSION to STAGE (Production needs an approved card and approver/admin)."""
    path = f"/v1/models/{name}/versions/{version}/transitions"
    echo_json(request(url, token, "POST", path, body={"stage": stage, "reason": reason}))


@models.command("card")
@click.argument("name", required=False)
@click.argument("version", type=int, required=False)
@click.option("--edit", "edit_path", type=click.Path(exists=True, path_type=Path), default=None)
@click.option("--submit", is_flag=True, help="Ask for review of the current revision.")
@click.option("--history", is_flag=True, help="Show every revision.")
@click.option("--template", is_flag=True, help="Print a complete example card and exit.")
@click.option("--reason", default="")
@URL
@TOKEN
def card(
    name: str | None,
    version: int | None,
    edit_path: Path | None,
    submit: bool,
    history: bool,
    template: bool,
    reason: str,
    url: str | None,
    token: str | None,
) -> None:
    """Show, edit (new revision), or submit for review the model card of NAME VERSION."""
    if template:
        echo_json(minimal_card_data())
        return
    if name is None or version is None:
        raise click.UsageError("NAME and VERSION are required")
    base = f"/v1/models/{name}/versions/{version}/card"
    if edit_path is not None:
        body = {"card": _json_file(edit_path), "reason": reason}
        echo_json(request(url, token, "PUT", base, body=body))
    if submit:
        echo_json(request(url, token, "POST", f"{base}/submit", body={"reason": reason}))
    if edit_path is None and not submit:
        path = f"{base}/revisions" if history else base
        echo_json(request(url, token, "GET", path))


@models.command("approve")
@click.argument("name")
@click.argument("version", type=int)
@click.option("--reject", is_flag=True, help="Reject instead of approve.")
@click.option("--reason", default="")
@click.option("--revision", type=int, default=None, help="The revision you reviewed.")
@URL
@TOKEN
def approve(
    name: str,
    version: int,
    reject: bool,
    reason: str,
    revision: int | None,
    url: str | None,
    token: str | None,
) -> None:
    """Approve (or --reject) the pending card of NAME VERSION (approver; not the registrant)."""
    body: dict[str, Any] = {"decision": "rejected" if reject else "approved", "reason": reason}
    if revision is not None:
        body["revision"] = revision
    path = f"/v1/models/{name}/versions/{version}/card/reviews"
    echo_json(request(url, token, "POST", path, body=body))


@models.command("lineage")
@click.argument("name", required=False)
@click.argument("version", type=int, required=False)
@click.option("--feature", default=None, help="Which versions used this feature ...")
@click.option("--feature-version", type=int, default=None, help="... at this version.")
@URL
@TOKEN
def lineage(
    name: str | None,
    version: int | None,
    feature: str | None,
    feature_version: int | None,
    url: str | None,
    token: str | None,
) -> None:
    """What NAME VERSION was built from, or which versions used --feature at --feature-version."""
    if feature is not None and feature_version is not None:
        path = f"/v1/lineage/features/{feature}/{feature_version}"
        echo_json(request(url, token, "GET", path))
        return
    if name is None or version is None:
        raise click.UsageError("give NAME VERSION, or --feature and --feature-version")
    echo_json(request(url, token, "GET", f"/v1/models/{name}/versions/{version}/lineage"))
