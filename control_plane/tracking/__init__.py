"""Experiment tracking on MLflow.

:class:`~control_plane.tracking.tracker.ExperimentTracker` wraps one ``MlflowClient`` bound to
the tracking URI of the settings (a SQLite file under ``.modelyard/`` by default, an MLflow
tracking server in production; never the deprecated ``./mlruns`` file store). It uses the client
API only, never MLflow's global fluent state, so one process can hold several trackers and
threads can log concurrently. :class:`~control_plane.tracking.service.TrackingService` makes it
awaitable for the REST controller and the CLI talks to either.
"""
