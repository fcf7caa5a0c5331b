"""MLflow tracking of a sweep: one parent run per sweep, one nested child run per trial.

The only package that imports mlflow (the driver, the CLI and ``xlt-report`` all go through
it): ``store`` (where the store is, credentials, timeouts), ``runs`` (``SweepTracker``: runs
found or created by tag, metrics in batches, artifacts), ``outbox`` (the ordered, retried
queue that makes an unreachable server lose nothing). The names of what is logged (metrics,
params, tags) are ``trainables.schema``'s.
"""

from orchestrator.tracking.outbox import Outbox, transient
from orchestrator.tracking.runs import EXPERIMENT_KIND, MODEL_TRAINING, SweepTracker, loggable_metrics, metric_chunks
from orchestrator.tracking.store import (
    credentials_to_env,
    mlflow_http_defaults,
    open_client,
    redact_uri,
    resolve_tracking_uri,
    warm_local_store,
)

__all__ = ["EXPERIMENT_KIND", "MODEL_TRAINING", "Outbox", "SweepTracker", "credentials_to_env", "loggable_metrics",
           "metric_chunks", "mlflow_http_defaults", "open_client", "redact_uri", "resolve_tracking_uri",
           "transient", "warm_local_store"]
