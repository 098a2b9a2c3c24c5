"""MLflow's tracking store and model registry on PostgreSQL (docs/postgres.md): a database of its own
in the suite's throwaway cluster; log a model, register it, set an alias and load it back."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.pg import PgCluster

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_mlflow_tracking_and_registry_on_postgres(pg: PgCluster, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    import mlflow
    from sklearn.linear_model import LogisticRegression

    # as docs/postgres.md says: a role and a database of MLflow's own (roles are cluster-wide)
    db = "mlflow"
    pg.execute("CREATE ROLE riskprof_mlflow LOGIN", f"CREATE DATABASE {db} OWNER riskprof_mlflow")
    uri = pg.url(db, "riskprof_mlflow")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.chdir(tmp_path)  # nothing may land in the working directory by accident
    mlflow.set_tracking_uri(uri)
    # riskprof's configure_mlflow (run by earlier tests in the session) sets the registry URI
    # process-wide: point it here too, or the model would be registered in that other store
    previous_registry = mlflow.get_registry_uri()
    mlflow.set_registry_uri(uri)
    try:
        client = mlflow.MlflowClient()
        exp = client.create_experiment("pg-check", artifact_location=(tmp_path / "artifacts").as_uri())
        rng = np.random.default_rng(0)
        x = rng.normal(size=(200, 3))
        y = (x[:, 0] + 0.1 * rng.normal(size=200) > 0).astype(int)
        model = LogisticRegression().fit(x, y)
        with mlflow.start_run(experiment_id=exp) as run:
            mlflow.log_metric("auc", 0.9)
            info = mlflow.sklearn.log_model(model, name="model", registered_model_name="pg-model")
        version = info.registered_model_version
        client.set_registered_model_alias("pg-model", "champion", version)

        assert client.get_run(run.info.run_id).data.metrics == {"auc": 0.9}
        assert str(client.get_model_version_by_alias("pg-model", "champion").version) == str(version)
        loaded = mlflow.pyfunc.load_model("models:/pg-model@champion")
        np.testing.assert_array_equal(loaded.predict(x[:20]), model.predict(x[:20]))
        # the registry really lives in PostgreSQL: its tables are in the database, not in a local file
        import sqlalchemy as sa

        engine = sa.create_engine(uri)
        with engine.connect() as conn:
            names = conn.execute(sa.text("SELECT name FROM registered_models")).scalars().all()
            aliases = conn.execute(sa.text("SELECT alias FROM registered_model_aliases")).scalars().all()
        engine.dispose()
        assert names == ["pg-model"] and aliases == ["champion"]
        assert not list(tmp_path.glob("*.db")) and not (tmp_path / "mlruns").exists()
    finally:
        mlflow.set_tracking_uri(None)
        mlflow.set_registry_uri(previous_registry)
