"""``modelyard convert``: convert a model file, prove it on a sample, write the artifact.

Writes ``DIR/model.onnx`` and ``DIR/conversion.json`` (signature, fidelity report and
metadata, the same figures as the model's ``metadata_props``) and prints one summary line.
Domain errors (unsupported model, corrupt file, sample mismatch, fidelity refusal) propagate
as :class:`~modelyard.errors.ModelyardError`; the root group prints them as one line on
stderr and exits 2.
"""

from __future__ import annotations

from pathlib import Path

import click
import msgspec

from converters.convert import convert as convert_model
from converters.loading import load_model, load_sample
from converters.report import Tolerances

ONNX_FILE = "model.onnx"
REPORT_FILE = "conversion.json"


@click.command("convert")
@click.option(
    "--model",
    "model_path",
    required=True,
    type=click.Path(path_type=Path, dir_okay=False),
    help="joblib/pickle, LightGBM text or XGBoost JSON/UBJ model file.",
)
@click.option(
    "--sample",
    "sample_path",
    required=True,
    type=click.Path(path_type=Path, dir_okay=False),
    help="CSV or Parquet rows with the model's columns (scored by both models).",
)
@click.option(
    "--output",
    "output_dir",
    required=True,
    type=click.Path(path_type=Path, file_okay=False),
    help="Folder for model.onnx and conversion.json (created if missing).",
)
@click.option(
    "--probability-atol",
    type=click.FloatRange(min=0),
    default=1e-5,
    show_default=True,
    help="Max |Δ| of any class probability.",
)
@click.option(
    "--prediction-atol",
    type=click.FloatRange(min=0),
    default=1e-5,
    show_default=True,
    help="Regression: |Δ| <= atol + rtol * max|prediction|.",
)
@click.option(
    "--prediction-rtol",
    type=click.FloatRange(min=0),
    default=1e-5,
    show_default=True,
    help="Regression: relative part of the tolerance.",
)
@click.option(
    "--min-label-agreement",
    type=click.FloatRange(0, 1),
    default=1.0,
    show_default=True,
    help="Share of rows whose labels must agree (ties at the native model excepted).",
)
@click.option(
    "--precision",
    type=click.Choice(["auto", "float32", "float64"]),
    default="auto",
    show_default=True,
    help="Graph input precision; auto: FP64 when FP32 inputs would change native answers.",
)
@click.option(
    "--allow-mismatch",
    is_flag=True,
    help="Write the model even outside the tolerances (recorded in its metadata).",
)
def convert(
    model_path: Path,
    sample_path: Path,
    output_dir: Path,
    probability_atol: float,
    prediction_atol: float,
    prediction_rtol: float,
    min_label_agreement: float,
    precision: str,
    allow_mismatch: bool,
) -> None:
    """Convert a scikit-learn, LightGBM or XGBoost model to ONNX with a fidelity report."""
    tolerances = Tolerances(
        probability_atol=probability_atol,
        prediction_atol=prediction_atol,
        prediction_rtol=prediction_rtol,
        min_label_agreement=min_label_agreement,
    )
    result = convert_model(
        load_model(model_path),
        load_sample(sample_path),
        tolerances=tolerances,
        allow_mismatch=allow_mismatch,
        precision=precision,
    )
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / ONNX_FILE).write_bytes(result.onnx)
    report = {
        "sha256": result.sha256,
        "signature": result.signature,
        "fidelity": result.fidelity,
        "metadata": result.metadata,
    }
    (output_dir / REPORT_FILE).write_bytes(msgspec.json.format(msgspec.json.encode(report)))
    verdict = "within tolerance" if result.fidelity.within_tolerance else "OUTSIDE tolerance"
    click.echo(
        f"wrote {output_dir / ONNX_FILE} (sha256 {result.sha256[:12]}): "
        f"{result.metadata['modelyard.source_kind']}, {verdict}: {result.fidelity.summary()}; "
        f"precision {result.fidelity.precision}: {result.fidelity.precision_reason}"
    )
