"""The model registry: versions, stages, model cards with approvals, lineage, publication.

``service.RegistryService`` holds the rules; ``store.RegistryStore`` the SQL (SQLAlchemy Core,
one implementation for SQLite and PostgreSQL); ``artifacts.ArtifactStore`` the content-addressed
ONNX files; ``publisher.RepositoryPublisher`` the model repository the inference servers read;
``mirror.MlflowMirror`` the copy in the MLflow Model Registry; ``routes`` and ``cli`` the thin
transports.
"""
