"""The MLflow runs a sweep left, for the integration tests that run the real ``xlt-sweep``."""

from __future__ import annotations

from pathlib import Path

from mlflow.tracking import MlflowClient


def sweep_runs(db: Path, name: str):
    """(client, parent runs, trial runs) of the experiment ``name`` in the sqlite store ``db``."""
    client = MlflowClient(f"sqlite:///{db}")
    runs = client.search_runs([client.get_experiment_by_name(name).experiment_id])
    return (client, [r for r in runs if r.data.tags.get("xlt.role") == "sweep"],
            [r for r in runs if r.data.tags.get("xlt.role") == "trial"])
