"""Where a sweep's MLflow store is and how it is reached (URIs, credentials, HTTP timeouts).

Tracking URI resolution: ``--tracking-uri``, else ``MLFLOW_TRACKING_URI``, else
``sqlite:///<absolute storage>/mlflow.db`` (a relative URI would give one database per trial,
because Tune changes into each trial's directory). Credentials in the URI's user info are moved
into ``MLFLOW_TRACKING_USERNAME``/``PASSWORD`` of the driver process (``credentials_to_env``):
the URI itself is pickled into Tune's state, so it must not carry them; printed URIs also go
through ``redact_uri``.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from mlflow.tracking import MlflowClient


def resolve_tracking_uri(cli_uri: str | None, storage: str) -> str:
    """``--tracking-uri``, else ``MLFLOW_TRACKING_URI``, else a sqlite store under ``storage``."""
    if cli_uri:
        return cli_uri
    if os.environ.get("MLFLOW_TRACKING_URI"):
        return os.environ["MLFLOW_TRACKING_URI"]
    return f"sqlite:///{Path(storage).resolve() / 'mlflow.db'}"


def redact_uri(uri: str) -> str:
    """``http://user:secret@host:5000/?token=x`` -> ``http://***@host:5000/?***``."""
    uri = re.sub(r"(?<=://)[^/@]+@", "***@", uri)
    return re.sub(r"\?.*$", "?***", uri)


def credentials_to_env(uri: str) -> str:
    """``http://user:pass@host`` -> ``http://host``, with the user and password moved into
    ``MLFLOW_TRACKING_USERNAME``/``MLFLOW_TRACKING_PASSWORD`` of this process (MLflow reads them
    there). The URI is pickled into Tune's state and logged; the credentials must not be."""
    from urllib.parse import unquote, urlsplit, urlunsplit

    parts = urlsplit(uri)
    if not parts.username and not parts.password:
        return uri
    if parts.username:
        os.environ.setdefault("MLFLOW_TRACKING_USERNAME", unquote(parts.username))
    if parts.password:
        os.environ.setdefault("MLFLOW_TRACKING_PASSWORD", unquote(parts.password))
    return urlunsplit((parts.scheme, parts.netloc.rsplit("@", 1)[-1], parts.path, parts.query, parts.fragment))


def mlflow_http_defaults() -> None:
    """Fail fast on a dead server (the Outbox retries): MLflow's default retries take minutes."""
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "1")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "20")


def warm_local_store(uri: str):
    """Open a local store (``sqlite:``, ``file:``) in a background thread and return it, so
    its imports and, for a new database, its schema migrations happen
    while Ray starts instead of before the first trial. Failures are left to the real calls
    (the Outbox reports them); a server URI has nothing to warm (None)."""
    import threading

    if not uri.startswith(("sqlite:", "file:")):
        return None

    def warm():
        try:
            MlflowClient(tracking_uri=uri).search_experiments(max_results=1)
        except Exception:  # noqa: BLE001  (see above)
            pass

    t = threading.Thread(target=warm, name="xlt-warm-mlflow-store", daemon=True)
    t.start()
    return t


def open_client(uri: str) -> MlflowClient:
    """A client of the store at ``uri`` (what ``xlt-report`` reads a sweep with)."""
    return MlflowClient(tracking_uri=uri)
