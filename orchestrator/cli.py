"""``xlt-sweep``: validate a space file, then run (or just plan) the sweep.

    xlt-sweep --space search_spaces/smoke.yaml              # local Ray, local MLflow store
    xlt-sweep --space search_spaces/domains.yaml --dry-run  # print cells, trials, resources
    xlt-sweep --space F --address auto                      # join the running cluster
    xlt-sweep --space F --resume                            # continue an interrupted sweep
    xlt-sweep --space search_spaces/robust_xlt.yaml --study mbert-pawsx   # one study of several

Before Ray starts: the space file validates (every problem at once, with its line:column),
the storage is locked for this sweep (``orchestrator.storage_lock``: a second launch on the
same ``--storage`` is refused, naming the holder), and every local data file the trials will
read exists and parses (``orchestrator.preflight``). Once Ray is up and the concurrency is
known, the storage the sweep needs at its peak is compared with the free bytes.

Ctrl-C: the first interrupt stops the sweep gracefully (Tune saves its state; the running
trials stop, each leaving a whole checkpoint whose report a ``--resume`` delivers); their
MLflow runs and the sweep's are closed as KILLED with the reason "interrupted", the summary
says how many trials finished and how many are left, and the exit code is 130. A second
interrupt aborts at once.

Exit codes: 0 all trials finished; 1 some trial failed (the sweep still ran the rest);
2 the space file, the data, the storage or the command line is wrong (nothing was started);
130 interrupted.
"""

from __future__ import annotations

import argparse
import json
import os
import stat
import sys
import time
from pathlib import Path

from orchestrator.spec import SpecError, load_sweeps


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="xlt-sweep", description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n" + "\n".join(__doc__.split("\n\n")[1].splitlines()))
    p.add_argument("--space", required=True, help="search-space YAML (see search_spaces/)")
    p.add_argument("--study", action="append", default=None, metavar="KEY",
                   help="run only this study of a file with a studies section (repeatable); "
                        "default: every study, one after another")
    p.add_argument("--data-dir", default=None,
                   help="read every dataset from this directory (an xlt-data mirror or raw files): "
                        "overrides target.data_dir and intermediate.data_dir")
    p.add_argument("--dry-run", action="store_true", help="print the resolved plan and exit")
    p.add_argument("--json", action="store_true", help="with --dry-run: print the plan as JSON")
    p.add_argument("--storage", default="./xlt_runs",
                   help="sweep storage: Tune state, checkpoints, default MLflow store (./xlt_runs)")
    p.add_argument("--address", default=None,
                   help="Ray cluster to join ('auto' or host:port); default: start a local Ray")
    p.add_argument("--resume", action="store_true", help="continue the interrupted sweep")
    p.add_argument("--tracking-uri", default=None,
                   help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI, else "
                        "sqlite:///<storage>/mlflow.db)")
    p.add_argument("--max-concurrent-trials", type=int, default=None,
                   help="override the space file / cluster-derived concurrency")
    p.add_argument("--no-storage-check", action="store_true",
                   help="start even when the storage estimate does not fit in the free space")
    p.add_argument("--cluster-config", default=None,
                   help="autoscaler cluster file, to size concurrency by what the cluster can grow "
                        "to (default with --address: ~/ray_bootstrap_config.yaml, which `ray up` "
                        "puts on the head)")
    return p


def unsafe_to_resume(exp_path: Path) -> str | None:
    """Why ``--resume`` must not read ``exp_path``, or None. Resuming unpickles Tune's state,
    so it is read only from the user's own storage: the sweep folder and its top-level files
    (``tuner.pkl``, the experiment state) must belong to this user, not be symbolic links, and
    be writable by nobody else (group-writable is fine for the user's own primary group, the
    umask-002 convention of per-user groups)."""
    uid, gid = os.getuid(), os.getgid()
    for p in [exp_path, *sorted(exp_path.iterdir())]:
        st = p.lstat()
        if stat.S_ISLNK(st.st_mode):
            return f"{p} is a symbolic link"
        if st.st_uid != uid:
            return f"{p} belongs to uid {st.st_uid}, not to you (uid {uid})"
        if st.st_mode & 0o002:
            return f"{p} is writable by others (mode {oct(st.st_mode & 0o777)})"
        if st.st_mode & 0o020 and st.st_gid != gid:
            return f"{p} is writable by group {st.st_gid}, not your own group (mode {oct(st.st_mode & 0o777)})"
    return None


def _print_plan(plan: dict) -> None:
    print(f"sweep {plan['sweep']}: {plan['trials']} trials = {len(plan['cells'])} cells x "
          f"{len(plan['seeds'])} seeds x {plan['samples_per_cell']} samples/cell "
          f"({plan['training_stages']} training stages, {plan['intermediate_models']} of them intermediate "
          f"models, each trained once: the stage cache)")
    print(f"model {plan['model']}, target {plan['target_task']} "
          f"[{', '.join(plan['languages'])}]")
    print(f"{'cell':<12}{'domain':<10}{'intermediate':<30}{'method':<13}{'noise':<10}{'lr':<10}")
    for c in plan["cells"]:
        print(f"{c['id']:<12}{c['domain']:<10}{','.join(c['intermediate_tasks']) or '-':<30}"
              f"{c['robust_method']:<13}{str(c.get('noise_magnitude', '*')):<10}"
              f"{str(c.get('learning_rate', '*')):<10}")
    for m, info in plan["methods"].items():
        if info["noise_magnitude"] is not None or info["options"]:
            opts = ", ".join(f"{k}={v}" for k, v in info["options"].items()) or "defaults"
            print(f"  {m}: noise_magnitude {info['noise_magnitude']}; {opts}")
    sampled = ", ".join(f"{k} ({v})" for k, v in plan["sampled_by_optuna"].items()) or "nothing"
    pt = plan["per_trial"]
    print(f"sampled by Optuna: {sampled}   (* = sampled or fixed)")
    where = "in the trial's process" if pt["executor"] == "trial" else "Ray Train workers"
    print(f"per trial: {pt['train_workers']} worker(s) ({where}), {pt['cpus']} CPU, {pt['gpus']} GPU; "
          f"ASHA {'on' if plan['asha'] else 'off'}; {plan['mode']} {plan['metric']}")
    print("fine-tuning (the target's XTREME-R settings where the file is silent): "
          + ", ".join(f"{k} {v}" for k, v in plan["training"].items()))


def main(argv: list[str] | None = None) -> int:
    """``xlt-sweep``: validate the space file(s), then run (or ``--resume``) each sweep; returns the exit code (0
    done, 1 a trial failed, 2 bad input, 130 interrupted)."""
    args = _parser().parse_args(argv)
    try:
        specs = load_sweeps(args.space, args.study, args.data_dir)
    except SpecError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    from orchestrator import preflight
    from orchestrator.space import plan

    plans = [plan(spec) for spec in specs]
    storage = Path(args.storage).resolve()
    if args.dry_run:
        for spec, the_plan in zip(specs, plans):
            the_plan["storage"] = preflight.estimate_storage(
                spec, the_plan["trials"], args.max_concurrent_trials or spec.search.max_concurrent_trials
                or _local_capacity(spec))
        if args.json:
            print(json.dumps(plans[0] if len(plans) == 1 else plans, indent=2))
        for i, the_plan in enumerate([] if args.json else plans):
            print("\n" * (i > 0), end="")
            _print_plan(the_plan)
            free = preflight.free_bytes(storage)
            print(preflight.describe(the_plan["storage"]) + f", with {the_plan['storage']['concurrent']} "
                  f"trial(s) at once; free at {storage}: {'?' if free is None else preflight.human(free)}")
        for spec in [] if args.json else specs:
            for note in preflight.data_notes(spec):
                print(f"data: {note}")
        return 0
    from orchestrator.storage_lock import StorageLock, StorageLocked

    try:
        lock = StorageLock(storage).acquire()
    except StorageLocked as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        print(f"error: cannot use --storage {storage}: {e.strerror or e}", file=sys.stderr)
        return 2
    problems = [p for spec in specs for p in preflight.check_data(spec)]
    if problems:
        problems = list(dict.fromkeys(problems))
        print(f"error: {len(problems)} data problem{'s' * (len(problems) != 1)} (nothing was started):\n"
              + "\n".join(f"  - {p}" for p in problems), file=sys.stderr)
        lock.release()
        return 2
    for note in dict.fromkeys(n for spec in specs for n in preflight.data_notes(spec)):
        print(f"data: {note}")
    several = len(specs) > 1
    resume = {}
    for spec in specs:  # check every sweep before starting any
        exp_path = storage / spec.name
        started = (exp_path / "tuner.pkl").exists()
        if exp_path.exists() and not args.resume:
            print(f"error: sweep '{spec.name}' already exists at {exp_path}; pass --resume to "
                  f"continue it, or use another --storage or name", file=sys.stderr)
            return 2
        if args.resume and not started and not several:
            print(f"error: nothing to resume at {exp_path} (no tuner.pkl)", file=sys.stderr)
            return 2
        why = unsafe_to_resume(exp_path) if args.resume and started else None
        if why:
            print(f"error: refusing to resume from {exp_path}: {why} (resuming unpickles that "
                  f"state; fix the ownership or permissions first)", file=sys.stderr)
            return 2
        if args.resume and started:
            from orchestrator.tuner import config_format_problem

            why = config_format_problem(storage, spec.name)
            if why:
                print(f"error: {why}", file=sys.stderr)
                return 2
        resume[spec.name] = args.resume and started  # studies not started yet start fresh
    codes = []
    for spec, the_plan in zip(specs, plans):
        if several:
            print(f"\n== study {spec.name} ({len(codes) + 1}/{len(specs)})")
        codes.append(_run(spec, the_plan, storage, args, resume[spec.name]))
        if codes[-1] in (2, INTERRUPTED):  # interrupted, or refused: the next studies do not start
            break
    if several:
        print(f"\n{len(specs)} studies: " + ", ".join(
            f"{s.name} {'ok' if c == 0 else 'with failed trials' if c == 1 else 'not finished'}"
            for s, c in zip(specs, codes)) + "".join(f", {s.name} not started" for s in specs[len(codes):]))
    return INTERRUPTED if INTERRUPTED in codes else max(codes)


INTERRUPTED = 130


def _local_capacity(spec) -> int:
    """Trials a local Ray on this machine holds at once (its CPUs / one trial's), for plans
    made before Ray starts."""
    r = spec.resources
    return max(1, int((os.cpu_count() or 1) // max(r.workers * r.cpus_per_worker, 1e-9)))


def _run(spec, the_plan: dict, storage: Path, args, resume: bool) -> int:
    from orchestrator import tuner as T
    from orchestrator.tracking import (
        SweepTracker,
        credentials_to_env,
        mlflow_http_defaults,
        redact_uri,
        resolve_tracking_uri,
        warm_local_store,
    )

    storage.mkdir(parents=True, exist_ok=True)
    mlflow_http_defaults()
    uri = credentials_to_env(resolve_tracking_uri(args.tracking_uri, str(storage)))
    print(f"MLflow tracking URI: {redact_uri(uri)}\n  view with: mlflow ui --backend-store-uri {redact_uri(uri)}")
    _print_plan(the_plan)
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "1")
    t0 = time.perf_counter()
    warming = warm_local_store(uri)
    resources = T.init_ray(args.address)
    if warming is not None:
        warming.join(timeout=60)
    grown = T.autoscaler_limits(args.cluster_config or ("~/ray_bootstrap_config.yaml" if args.address else None))
    concurrent = args.max_concurrent_trials or spec.search.max_concurrent_trials or \
        T.capacity(spec, resources, grown)
    print(f"Ray resources: {resources}" + (f" (autoscaler: up to {grown})" if grown else "")
          + f"; up to {concurrent} trial(s) at once")
    from orchestrator import preflight

    estimate = preflight.estimate_storage(spec, the_plan["trials"], concurrent)
    print(preflight.describe(estimate))
    too_small = None if args.no_storage_check else preflight.check_space(storage, estimate)
    if too_small:
        print(f"error: {too_small} (or pass --no-storage-check)", file=sys.stderr)
        return 2
    remote = "://" in uri and not uri.startswith(("sqlite:", "file:"))
    tracker = SweepTracker(uri, spec.name, sweep_key=str(storage / spec.name),
                           artifact_root=None if remote else str(storage / "mlartifacts"))
    tuner = T.build_tuner(spec, storage, tracker, resume, concurrent)
    with _interrupts() as guard:
        try:
            results = tuner.fit()
        except (EOFError, OSError) as e:  # Tune reads back what it wrote: truncated on a full disk
            from trainables.failures import NEARLY_FULL

            if (preflight.free_bytes(storage) or 0) > NEARLY_FULL:
                raise
            print(f"\nerror: Tune could not read back its own state ({type(e).__name__}: {e}); "
                  f"{_what_to_free(storage)}", file=sys.stderr)
            return 1
        guard.finishing()
        return _finish(spec, the_plan, storage, tracker, results, t0, uri)


def _finish(spec, the_plan, storage: Path, tracker, results, t0: float, uri: str) -> int:
    """After Tune returned: the summary, the runs of interrupted trials, the sweep's parent run."""
    from orchestrator import preflight
    from orchestrator import tuner as T
    from orchestrator.tracking import Outbox, redact_uri

    summary = T.summarize(results, spec.search.metric, the_plan["trials"], T.trial_statuses(storage / spec.name))
    summary["wall_s"] = round(time.perf_counter() - t0, 1)
    summary.update(_bytes_left(storage / "_xlt" / spec.name, summary["finished"]))
    outbox = Outbox(tracker, str(T.outbox_path(storage, spec.name)))
    for r in summary["rows"]:
        if r["status"] == "INTERRUPTED":  # started (or queued): its run goes back to RUNNING on --resume
            outbox.submit("end", r["trial"], status="KILLED", optional=True,
                          reason="interrupted (Ctrl-C); xlt-sweep ... --resume continues it from its last checkpoint")
    cache = _close_sweep(tracker, outbox, the_plan, summary)
    left = f", {summary['left']} left (interrupted)" if summary["interrupted"] else ""
    print(f"\n{summary['finished']}/{the_plan['trials']} trials finished, {summary['failed']} "
          f"failed{left}, {summary['wall_s']} s; storage left by the sweep: "
          f"{preflight.human(summary['storage/bytes_left'])}")
    if cache.get("stage_cache/distinct_keys"):
        print(f"stage cache: {cache['stage_cache/trainings']} intermediate model(s) trained by this sweep, "
              f"{cache['stage_cache/hits']} reuse(s), {cache['stage_cache/distinct_keys']} configuration(s)")
    for r in summary["rows"]:
        print(f"  {r['trial']:<16}{r['cell']:<44} seed={r['seed']!s:<4} "
              f"{spec.search.metric}={T.fmt(r[spec.search.metric])} score={T.fmt(r['score'])} "
              f"{r['status']} {r['error']}")
    if summary["failed"]:
        print(f"{summary['failed']} trial(s) failed; the reason of each is the tag xlt.error of its MLflow run "
              f"(the traceback: its artifact error.txt)")
    if any(r["error"].startswith("storage full") for r in summary["rows"]):
        print(_what_to_free(storage), file=sys.stderr)
    ui = _runs_page(uri, cache.get("experiment_id"))
    print(f"MLflow: mlflow ui --backend-store-uri {redact_uri(uri)}  (experiment '{spec.name}')"
          + (f"\n  runs page: {ui}" if ui else ""))
    if summary["interrupted"]:
        print(f"interrupted: {summary['left']} trial(s) left; continue with the same command and --resume")
        return INTERRUPTED
    return 1 if summary["failed"] else 0


class _interrupts:
    """While the sweep runs: the first Ctrl-C goes to Tune (it stops the trials and saves its
    state, then puts this handler back); a second one ends the process at once, exit 130."""

    def __enter__(self):
        import signal

        def abort(signum, frame):
            print("\nsecond interrupt: aborting now (the last saved state is what --resume continues)",
                  file=sys.stderr, flush=True)
            os._exit(INTERRUPTED)

        self.abort = abort
        self.previous = signal.signal(signal.SIGINT, abort)
        return self

    def finishing(self):
        """Once Tune has returned: a Ctrl-C would cut the summary and the MLflow runs' ends half
        written, so the first one is noted and the writing goes on; a second one aborts."""
        import signal

        def note(signum, frame):
            print("\ninterrupt: the trials have stopped; finishing the summary and the MLflow runs "
                  "(Ctrl-C again aborts)", file=sys.stderr, flush=True)
            signal.signal(signal.SIGINT, self.abort)

        signal.signal(signal.SIGINT, note)

    def __exit__(self, *exc):
        import signal

        signal.signal(signal.SIGINT, self.previous)
        return False


def _bytes_left(sweep_dir: Path, finished: int) -> dict:
    """What the sweep's trials left in its folder (checkpoints kept, predictions, manifests;
    not ``assets/``: built-in data, tokenised features and models shared by every trial)."""
    from orchestrator.preflight import tree_bytes

    total = sum(tree_bytes(sweep_dir / sub) for sub in ("train", "stages", "predictions"))
    return {"storage/bytes_left": total, "storage/bytes_left_per_finished_trial": total // max(1, finished)}


def _what_to_free(storage: Path) -> str:
    from orchestrator import preflight

    parts = sorted(((preflight.tree_bytes(p), p) for p in storage.iterdir() if p.is_dir()),
                   reverse=True)[:5] if storage.is_dir() else []
    biggest = "; ".join(f"{p} {preflight.human(n)}" for n, p in parts)
    free = preflight.human(preflight.free_bytes(storage) or 0)
    return (f"the storage is full ({free} free at {storage}). Free space there (largest folders: "
            f"{biggest or 'none'}; a finished sweep's stage_cache/ is only needed to reuse its intermediate "
            f"models, mlartifacts/ holds the MLflow copies of the predictions), then run the same command "
            f"with --resume: the failed trials run again")


def _runs_page(uri: str, experiment_id: str | None) -> str | None:
    """The MLflow UI page of the experiment's runs table: on the tracking server itself, or on
    ``mlflow ui``'s default address for a local store. MLflow 3.17's UI has a global
    GenAI / Model training switch that defaults to GenAI (its traces overview) whatever the
    experiment's kind; ``workflowType=machine_learning`` in the link sets it to Model training
    (the browser then remembers it), checked in headless Chromium."""
    if not experiment_id:
        return None
    if uri.startswith(("http://", "https://")):
        base = uri.rstrip("/")
    else:
        base = "http://127.0.0.1:5000"
    return f"{base}/#/experiments/{experiment_id}/runs?workflowType=machine_learning"


def _close_sweep(tracker, outbox, the_plan: dict, summary: dict) -> dict:
    """Deliver what the Tune callback could not, close orphaned runs and the parent run; print
    what happened to tracking. Returns the stage-cache figures ({} if MLflow stayed away)."""
    stats_file = Path(outbox.spill).with_name("tracking_stats.json")
    stats = json.loads(stats_file.read_text()) if stats_file.is_file() else {}
    outbox.load()
    trial_ids = {r["trial"] for r in summary["rows"]}
    summary.update({f"tracking/{k}": stats[k] for k in ("delivered_late", "dropped", "outage_s") if k in stats})
    outbox.submit("sweep", plan=the_plan)  # Tune ran a copy of the callback: re-attach by tag
    delivered = outbox.flush(wait_s=float(os.environ.get("XLT_TRACKING_FLUSH_S", 300)))
    cache = {}
    if delivered:
        try:
            cache = outbox.tracker.end_sweep(summary, trial_ids)
            cache["experiment_id"] = outbox.tracker.experiment_id()
        except Exception as e:  # noqa: BLE001  (the sweep's results are safe in Tune's storage)
            delivered = False
            print(f"warning: could not close the sweep's MLflow run: {str(e)[:300]}", file=sys.stderr)
    saved = outbox.save()
    if cache.get("orphaned_runs"):
        print(f"{cache['orphaned_runs']} MLflow run(s) of trials the killed driver had started but Tune never "
              f"recorded were closed as KILLED (their cells ran again under new trial ids)")
    if stats.get("delivered_late"):
        print(f"MLflow was unreachable for {stats.get('outage_s', 0):.0f} s during the sweep: "
              f"{stats['delivered_late']} tracking call(s) were buffered and delivered late, none lost")
    if stats.get("dropped"):
        print(f"warning: MLflow rejected {stats['dropped']} tracking call(s): {stats.get('errors')}", file=sys.stderr)
    if saved:
        print(f"warning: MLflow is unreachable; {len(outbox.pending)} tracking call(s) saved to {saved}; "
              f"the next `xlt-sweep ... --resume` delivers them", file=sys.stderr)
    elif not delivered:
        print("warning: the sweep's MLflow run was not closed (see above); `xlt-sweep ... --resume` closes it",
              file=sys.stderr)
    return cache


def entry() -> None:
    """The ``xlt-sweep`` console script: ``main``, Ray shut down, every exit handler run, then
    the process ends without tearing down its modules (Ray, Tune, MLflow, SQLAlchemy,
    Optuna; nothing is left to do by then: results, MLflow and Tune state are written before
    ``main`` returns)."""
    from orchestrator.adapters import exit_now

    code = main()
    if "ray" in sys.modules:
        import ray

        ray.shutdown()
    exit_now(code)


if __name__ == "__main__":
    entry()
