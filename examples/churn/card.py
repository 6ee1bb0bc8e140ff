"""The churn model's card, generated from what the pipeline measured."""

from __future__ import annotations

from modelyard.datasets import ChurnDataset
from modelyard.models import DatasetInfo, ModelCard, ModelDetails, Owner, PerformanceMetric, Risk


def churn_model_card(
    *,
    family: str,
    version_label: str,
    training: ChurnDataset,
    validation_rows: int,
    metrics: dict[str, float],
    slice_auc: dict[str, float],
) -> ModelCard:
    """A complete Model Card Toolkit card for a trained churn classifier.

    Args:
        family: the winning model family (``lightgbm``, ...).
        version_label: how the model describes itself (run id, date).
        training: the data it was trained on (its URI and content hash are recorded).
        validation_rows: size of the held-out evaluation split.
        metrics: overall validation metrics by name.
        slice_auc: validation ROC AUC by contract type.
    """
    overall = [PerformanceMetric(type=name, value=value) for name, value in metrics.items()]
    slices = [
        PerformanceMetric(type="roc_auc", value=value, slice=f"contract={name}")
        for name, value in slice_auc.items()
    ]
    return ModelCard(
        model_details=ModelDetails(
            name="churn",
            overview=f"Predicts whether a customer cancels within the next quarter ({family}).",
            owners=(Owner(name="churn-team", contact="churn-team@example.com"),),
            version=version_label,
            license="Apache-2.0",
            references=("modelyard examples/churn",),
        ),
        intended_uses=(
            "Rank existing customers by churn risk for retention offers.",
            "Monitor churn risk of the customer base over time.",
        ),
        out_of_scope_uses=(
            "Decisions about individual credit, pricing or service eligibility.",
            "Customers of other markets or products than the training population.",
        ),
        training_data=DatasetInfo(
            name="synthetic churn sample",
            uri=training.uri,
            sha256=training.content_hash(),
            description="Seeded synthetic customers: tenure, charges, contract, payment, "
            "internet service, support calls, products, age, region, partner.",
            rows=len(training.frame),
        ),
        evaluation_data=DatasetInfo(
            name="held-out 25% stratified split",
            uri=training.uri,
            sha256=training.content_hash(),
            rows=validation_rows,
        ),
        metrics=tuple(overall + slices),
        limitations=(
            "Trained on synthetic data; retrain on real customer data before real use.",
            "Probabilities are not calibrated for populations that drifted from training.",
        ),
        ethical_considerations=(
            Risk(
                name="Age is an input and could proxy for protected attributes.",
                mitigation="Review retention offers by age band before acting on scores.",
            ),
        ),
        tradeoffs=("Higher recall on churners raises the number of offers sent.",),
    )
