"""Hyperparameter tuning with Optuna, every trial logged to MLflow.

``spaces`` declares what may vary (defaults per model family, overridable), ``estimators``
builds the models and the default objective, ``tuner`` runs an Optuna study (TPE sampler,
median pruner; threads or several processes on a PostgreSQL RDB storage), and
``trial_logger`` writes each finished trial as a child run of the study's MLflow run. The
control plane runs studies as background jobs (``service``), whose progress lives in the
``tuning_jobs`` table (``store``, Alembic branch ``tuning``) so it survives a restart.
"""
