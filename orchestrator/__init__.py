"""What runs on the sweep driver: CLI, space-file parsing, Ray Tune setup, MLflow tracking.

The driver never touches tensors; it validates a space file, turns it into a Tune search,
and records trials in MLflow. ``tuner.py`` is the only ``ray.tune`` importer here and
``tracking/`` the only ``mlflow`` importer (``report/`` reads the store through it).
"""
