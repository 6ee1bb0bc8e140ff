"""Enumerations shared by both planes.

String-valued so they encode to readable JSON and survive a database round trip unchanged.
"""

from __future__ import annotations

import enum


class ModelStage(enum.Enum):
    """Lifecycle stage of a registered model version.

    None -> Staging -> Production -> Archived, and Archived -> Staging to bring one back.
    """

    NONE = "None"
    STAGING = "Staging"
    PRODUCTION = "Production"
    ARCHIVED = "Archived"


class AlertType(enum.Enum):
    """What a monitoring alert is about."""

    DATA_DRIFT = "data_drift"
    PREDICTION_DRIFT = "prediction_drift"
    PERFORMANCE_DEGRADATION = "performance_degradation"
    LATENCY = "latency"
    ERROR_RATE = "error_rate"


class TriggerType(enum.Enum):
    """Why a retraining run started."""

    DRIFT = "drift"
    PERFORMANCE = "performance"
    SCHEDULE = "schedule"
    MANUAL = "manual"


class ModelVariant(enum.Enum):
    """The role of a model version in an A/B test.

    A shadow variant scores the same request as the control but its answer is never returned.
    """

    CONTROL = "control"
    TREATMENT = "treatment"
    SHADOW = "shadow"


class CardStatus(enum.Enum):
    """Review status of a model card revision: draft -> pending_review -> approved | rejected."""

    DRAFT = "draft"
    PENDING_REVIEW = "pending_review"
    APPROVED = "approved"
    REJECTED = "rejected"


class FeatureDType(enum.Enum):
    """Logical value type of a feature."""

    INT64 = "int64"
    FLOAT64 = "float64"
    STRING = "string"
    BOOL = "bool"
    TIMESTAMP = "timestamp"
    CATEGORY = "category"


class Role(enum.Enum):
    """Roles of control-plane API tokens, each including the ones before it except approver.

    viewer reads; developer registers, transitions (not to Production) and edits; approver
    reviews model cards; auditor reads, plus the audit log and token metadata; admin does
    everything, including managing tokens.
    """

    VIEWER = "viewer"
    DEVELOPER = "developer"
    APPROVER = "approver"
    AUDITOR = "auditor"
    ADMIN = "admin"
