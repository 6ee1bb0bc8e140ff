"""Core data models: the wire and domain shapes both planes exchange.

Every shape is a ``msgspec.Struct(kw_only=True)``. Value objects are frozen. Shapes decoded
from outside input derive from :class:`InputStruct`, which forbids unknown fields so a typo in a
request is an error, not a silently ignored key. Encoders and decoders are built once
(:mod:`modelyard.codec`).

The model card follows the Model Card Toolkit schema (model details, considerations, model
parameters, quantitative analysis), flattened to the parts a tabular model needs.
"""

from __future__ import annotations

import datetime as dt
import sys
from typing import Annotated

import msgspec

from modelyard.enums import CardStatus, FeatureDType, ModelStage, ModelVariant

Scalar = str | int | float | bool | None
"""A JSON scalar: the value type of parameters, tags and feature values."""

# ``\Z``, not ``$``: ``$`` also matches before a trailing newline ("churn\n").
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}\Z"
"""The pattern of every entity name from outside input (model, feature, channel names)."""

Name = Annotated[str, msgspec.Meta(pattern=NAME_PATTERN)]
"""An entity name: letters, digits, ``_ . -``; no path separators, so it is safe as a folder."""

FiniteFloat = Annotated[float, msgspec.Meta(ge=-sys.float_info.max, le=sys.float_info.max)]
"""A number from outside input: NaN and the infinities are refused (also the strings
``"NaN"`` / ``"Infinity"``, which the web framework's lenient conversion turns into them).
JSON has no such numbers: msgspec writes them as ``null``, and a stored ``null`` where a float
belongs failed every later read of the object (a 500 until it was replaced)."""

MAX_MAGNITUDE = 1e100
"""The largest magnitude of a number that statistics are computed over. Finite is not enough:
two values of 1e200 squared, or of 1e308 summed, are infinite, and the statistic then could
not be stored or answered (see :data:`FiniteFloat`); below 1e100, sums of any number of values
and squares of differences stay finite. The drift sketches count larger values as missing
(:mod:`modelyard.binning`)."""

MeasureFloat = Annotated[float, msgspec.Meta(gt=-MAX_MAGNITUDE, lt=MAX_MAGNITUDE)]
"""A number from outside input that statistics are computed over (an outcome's value, a
label): below :data:`MAX_MAGNITUDE` in magnitude."""

Int64 = Annotated[int, msgspec.Meta(ge=-(2**63), le=2**63 - 1)]
"""An integer from outside input that fits the databases' BIGINT (and converts to a float)."""

NO_NUL = r"^[^\x00]*$"
"""A pattern text from outside input must match: PostgreSQL refuses NUL in TEXT (SQLite keeps
it), so a write refused there after a change outside the database left the two disagreeing."""

Text = Annotated[str, msgspec.Meta(max_length=10_000, pattern=NO_NUL)]
"""Free text from outside input (a reason, a description): no NUL, at most 10,000 characters."""

MAX_VERSION = 2**31 - 1
"""The largest version number: versions are ``INTEGER`` columns (32 bits on PostgreSQL)."""

VersionNumber = Annotated[int, msgspec.Meta(ge=1, le=MAX_VERSION)]
"""A model or feature version from outside input: the ``INTEGER`` columns' range (PostgreSQL
refused a larger one with its own error; SQLite stored it)."""

Seed = Annotated[int, msgspec.Meta(ge=0, le=2**32 - 1)]
"""A random seed from outside input: what numpy and scikit-learn accept (0 .. 2**32 - 1); a
larger one was accepted and failed the job later."""


class InputStruct(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Base of mutable shapes decoded from outside input: unknown fields are rejected."""


class InputValue(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """Base of value objects decoded from outside input: frozen, unknown fields rejected."""


class TensorSpec(InputValue, kw_only=True, frozen=True):
    """One input or output tensor of a model, in Open Inference Protocol terms.

    Attributes:
        name: tensor name in the ONNX graph.
        datatype: OIP datatype (``FP32``, ``FP64``, ``INT64``, ``BYTES``, ...).
        shape: dimensions; ``-1`` marks a variable dimension (the batch).
    """

    name: str
    datatype: str
    shape: tuple[int, ...]


class ModelSignature(InputValue, kw_only=True, frozen=True):
    """Inputs and outputs of a compiled model, plus the feature names of its columns."""

    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    feature_names: tuple[str, ...] = ()


class FeatureRef(InputValue, kw_only=True, frozen=True):
    """The stable key of one feature definition: its name and version."""

    name: Name
    version: VersionNumber


class Feature(msgspec.Struct, kw_only=True, frozen=True):
    """One stored version of a feature definition.

    Attributes:
        id: unique id of the feature (shared by all its versions).
        name: unique feature name; with ``version`` the stable key.
        version: 1 for the first definition, n+1 for each update.
        description: what the feature means.
        dtype: logical value type.
        entity: the entity the feature describes (``customer``).
        owner: who answers for the definition.
        transformation: expression or code reference that computes it.
        source: dataset or table it is computed from.
        tags: free labels for search.
        created_at: when this version was written (UTC).
        created_by: the principal who wrote this version.
        deprecated: hidden from listings when true; every version stays readable.
    """

    id: str
    name: str
    version: int
    description: str
    dtype: FeatureDType
    entity: str
    owner: str
    transformation: str
    source: str
    tags: tuple[str, ...] = ()
    created_at: dt.datetime
    created_by: str
    deprecated: bool = False


class Owner(InputValue, kw_only=True, frozen=True):
    """An owner of a model: a person or team and how to reach them."""

    name: str
    contact: str = ""


class ModelDetails(InputValue, kw_only=True, frozen=True):
    """Model Card Toolkit ``model_details``."""

    name: str
    overview: str
    owners: tuple[Owner, ...]
    version: str
    license: str
    references: tuple[str, ...] = ()
    citation: str = ""


class DatasetInfo(InputValue, kw_only=True, frozen=True):
    """A dataset the model was trained or evaluated on."""

    name: str
    uri: str = ""
    sha256: str = ""
    description: str = ""
    rows: int | None = None


class PerformanceMetric(InputValue, kw_only=True, frozen=True):
    """One metric value, overall (``slice`` empty) or on a named data slice."""

    type: str
    value: FiniteFloat
    slice: str = ""
    threshold: FiniteFloat | None = None


class Risk(InputValue, kw_only=True, frozen=True):
    """An ethical consideration and how it is mitigated."""

    name: str
    mitigation: str


class ModelCard(InputValue, kw_only=True, frozen=True):
    """The content of a model card (Model Card Toolkit schema).

    Status, revision and approvals are recorded by the registry beside the content; the card
    content is what an approval signs (by its hash).
    """

    model_details: ModelDetails
    intended_uses: tuple[str, ...]
    out_of_scope_uses: tuple[str, ...]
    training_data: DatasetInfo
    evaluation_data: DatasetInfo
    metrics: tuple[PerformanceMetric, ...]
    limitations: tuple[str, ...]
    ethical_considerations: tuple[Risk, ...]
    tradeoffs: tuple[str, ...] = ()


IdText = Annotated[str, msgspec.Meta(max_length=128, pattern=NO_NUL)]
"""A short identifier from outside input stored in a ``VARCHAR(128)`` (a run id, a commit)."""


class DatasetRef(InputValue, kw_only=True, frozen=True):
    """Where training data came from and the hash of its content."""

    uri: Text
    sha256: Annotated[str, msgspec.Meta(max_length=64, pattern=NO_NUL)]


MAX_LINEAGE_FEATURES = 10_000
"""Most feature references a model's lineage may name."""


class ModelLineage(InputValue, kw_only=True, frozen=True):
    """What a model version was built from.

    Attributes:
        mlflow_run_id: the tracking run that trained it.
        training_dataset: URI and content hash of the training data.
        features: the feature definitions used, as (name, version) pairs.
        parent_version: the version it was retrained from, if any.
        code_version: git commit of the training code.
        hyperparameters: the training parameters.
        fidelity: the conversion fidelity figures (max/mean |delta|, label agreement).
    """

    mlflow_run_id: IdText
    training_dataset: DatasetRef
    features: Annotated[tuple[FeatureRef, ...], msgspec.Meta(max_length=MAX_LINEAGE_FEATURES)]
    parent_version: VersionNumber | None = None
    code_version: IdText
    hyperparameters: dict[str, Scalar] = msgspec.field(default_factory=dict)
    fidelity: dict[str, FiniteFloat] = msgspec.field(default_factory=dict)


class RegisteredModel(msgspec.Struct, kw_only=True, frozen=True):
    """One registered version of a model, with its card and lineage.

    Attributes:
        name: model name (safe as a folder name).
        version: 1, 2, ... per name, never reused.
        stage: lifecycle stage.
        onnx_sha256: content hash of the ONNX artifact (its address in the artifact store).
        signature: inputs and outputs of the compiled model.
        card: the current model card revision's content.
        card_revision: 1 at registration, n+1 per edit.
        card_status: review status of the current revision.
        lineage: what the version was built from.
        created_at: registration time (UTC).
        created_by: the principal who registered it.
        description: free text.
        tags: free key/value labels.
    """

    name: str
    version: int
    stage: ModelStage
    onnx_sha256: str
    signature: ModelSignature
    card: ModelCard
    card_revision: int
    card_status: CardStatus
    lineage: ModelLineage
    created_at: dt.datetime
    created_by: str
    description: str = ""
    tags: dict[str, str] = msgspec.field(default_factory=dict)


class Prediction(msgspec.Struct, kw_only=True, frozen=True):
    """The durable record of one scored row.

    Attributes:
        request_id: id of the request (echoed from the client or generated).
        model_name: the model that answered.
        model_version: the version that computed the answer.
        variant: the A/B role of that version, if the request was routed.
        features: input values by feature name.
        outputs: output values by output name (label, probabilities, prediction).
        latency_us: server-side latency of the request in microseconds.
        timestamp: when the answer was sent (UTC).
    """

    request_id: str
    model_name: str
    model_version: int
    variant: ModelVariant | None = None
    features: dict[str, Scalar]
    outputs: dict[str, Scalar | list[float]]
    latency_us: int
    timestamp: dt.datetime


class FeatureDrift(msgspec.Struct, kw_only=True, frozen=True):
    """Drift of one feature between a reference window and a current window."""

    feature: str
    statistic: str
    score: float
    threshold: float
    drifted: bool


class DriftReport(msgspec.Struct, kw_only=True, frozen=True):
    """Drift of a model's inputs (and outputs) over one window.

    Attributes:
        model_name: the monitored model.
        model_version: the monitored version.
        window_start: first prediction time in the current window (UTC).
        window_end: last prediction time in the current window (UTC).
        reference: what the window was compared with (a dataset hash or a window).
        features: per-feature drift, outputs included under their output names.
        drifted: true when any feature drifted.
        sample_size: predictions in the current window.
    """

    model_name: str
    model_version: int
    window_start: dt.datetime
    window_end: dt.datetime
    reference: str
    features: tuple[FeatureDrift, ...]
    drifted: bool
    sample_size: int


__all__ = [
    "MAX_MAGNITUDE",
    "MAX_VERSION",
    "NAME_PATTERN",
    "NO_NUL",
    "CardStatus",
    "DatasetInfo",
    "DatasetRef",
    "DriftReport",
    "Feature",
    "FeatureDType",
    "FeatureDrift",
    "FeatureRef",
    "IdText",
    "InputStruct",
    "InputValue",
    "Int64",
    "MeasureFloat",
    "ModelCard",
    "ModelDetails",
    "ModelLineage",
    "ModelSignature",
    "ModelStage",
    "ModelVariant",
    "Name",
    "Owner",
    "PerformanceMetric",
    "Prediction",
    "RegisteredModel",
    "Risk",
    "Scalar",
    "Seed",
    "TensorSpec",
    "Text",
    "VersionNumber",
]
