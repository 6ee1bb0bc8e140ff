"""The prediction log and its outcomes as A/B testing reads them: the :class:`ObservationSource`
port and its adapter over the prediction log's service.

Reads through :meth:`PredictionService.iter_labelled` — the prediction log's documented read
API, never its store — with the model, version **and** variant as filters, so a variant's
metrics are computed only from its own records (property 20); shadow copies are left out
(their answers were never returned, so outcomes do not describe them).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from control_plane.abtesting.analysis import Observation
from modelyard.enums import ModelVariant

if TYPE_CHECKING:
    import datetime as dt
    from collections.abc import Sequence

    from control_plane.predictions.models import LabelledPrediction
    from control_plane.predictions.service import PredictionService


class ObservationSource(Protocol):
    """The prediction log joined with outcomes, as A/B testing reads it."""

    async def observations(
        self,
        model: str,
        version: int,
        variant: ModelVariant,
        since: dt.datetime,
        until: dt.datetime | None,
    ) -> Sequence[Observation]:
        """One observation per answered request of exactly this model, version and variant
        (shadow answers excluded), created in ``[since, until)``, oldest first."""
        ...


class PredictionLogSource:
    """:class:`ObservationSource` over the prediction log.

    Args:
        predictions: the prediction log's service.
    """

    def __init__(self, predictions: PredictionService) -> None:
        self._predictions = predictions

    async def observations(
        self,
        model: str,
        version: int,
        variant: ModelVariant,
        since: dt.datetime,
        until: dt.datetime | None,
    ) -> list[Observation]:
        """Every logged row of exactly this model, version and variant in ``[since, until)``."""
        return [
            observation(item)
            async for item in self._predictions.iter_labelled(
                model, version, variant.value, since, until
            )
        ]


def observation(item: LabelledPrediction) -> Observation:
    """One logged row with its outcome, as the statistics read it."""
    record, outcome = item.record, item.outcome
    return Observation(
        request_id=record.request_id,
        row_index=record.row_index,
        version=record.version,
        variant=ModelVariant(record.variant),
        created_at=record.created_at,
        latency_ms=record.latency_ms,
        outputs=dict(record.outputs),
        converted=None if outcome is None else outcome.conversion,
        value=None if outcome is None else outcome.value,
        label=None if outcome is None else outcome.label,
    )
