-- One PostgreSQL server, one database per owner: modelyard's state (the POSTGRES_DB default),
-- MLflow's tracking store and Optuna's studies. MLflow and modelyard both define a
-- registered_models table, so they can never share a database (tests/modelyard/test_shared_database.py).
CREATE DATABASE mlflow OWNER modelyard;
CREATE DATABASE optuna OWNER modelyard;
