"""A real single-host Slurm for the launcher tests: Debian's slurm-wlm and munge, started here.

``slurm_cluster(root)`` starts ``munged`` (its own socket and key copy), ``slurmctld`` and one
``slurmd`` for this host, all with files under ``root`` and ports of their own, and yields the
environment that points Slurm's commands at it (``SLURM_CONF``). Where the binaries are missing
and this is a Debian machine run as root, the packages are installed first (the CI machine
reaches Debian's package index); elsewhere the error says what to install."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

PACKAGES = ("slurm-wlm", "munge")
BINARIES = ("munged", "slurmctld", "slurmd", "sbatch", "scancel", "scontrol")


def ensure_installed() -> None:
    """Install Debian's slurm-wlm and munge when a binary is missing (root only)."""
    if all(shutil.which(b) for b in BINARIES):
        return
    if os.geteuid() == 0 and shutil.which("apt-get"):
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        cmd = ["apt-get", "install", "-y", "-q", "--no-install-recommends", *PACKAGES]
        if subprocess.run(cmd, env=env, capture_output=True).returncode != 0:
            subprocess.run(["apt-get", "update", "-q"], env=env, capture_output=True, check=True)
            subprocess.run(cmd, env=env, capture_output=True, check=True)
    missing = [b for b in BINARIES if not shutil.which(b)]
    if missing:
        raise RuntimeError(f"the Slurm tests need {', '.join(missing)}: install Debian's "
                           f"{' and '.join(PACKAGES)} (sudo apt-get install {' '.join(PACKAGES)})")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _conf(root: Path, cpus: int, memory_mb: int) -> str:
    host = socket.gethostname()
    return "\n".join([
        "ClusterName=xlt-test",
        f"SlurmctldHost={host}(127.0.0.1)",
        "SlurmUser=root", "SlurmdUser=root",
        f"SlurmctldPort={free_port()}", f"SlurmdPort={free_port()}",
        "AuthType=auth/munge", f"AuthInfo=socket={root}/munge.sock", "CredType=cred/munge",
        f"StateSaveLocation={root}/state", f"SlurmdSpoolDir={root}/spool",
        f"SlurmctldPidFile={root}/slurmctld.pid", f"SlurmdPidFile={root}/slurmd.pid",
        f"SlurmctldLogFile={root}/slurmctld.log", f"SlurmdLogFile={root}/slurmd.log",
        "ProctrackType=proctrack/linuxproc", "TaskPlugin=task/none",
        "SelectType=select/cons_tres", "SelectTypeParameters=CR_Core",
        "JobCompType=jobcomp/none", "MpiDefault=none", "ReturnToService=2",
        "KillWait=10", "MinJobAge=3600",
        f"NodeName={host} NodeAddr=127.0.0.1 CPUs={cpus} RealMemory={memory_mb} State=UNKNOWN",
        "PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP", ""])


@contextlib.contextmanager
def slurm_cluster(root: Path, cpus: int | None = None, memory_mb: int = 8000):
    """Start munged, slurmctld and slurmd under ``root``; yield the environment for Slurm's
    commands; stop all three (and any job left) on exit."""
    ensure_installed()
    root.mkdir(parents=True, exist_ok=True)
    for sub in ("state", "spool"):
        (root / sub).mkdir(exist_ok=True)
    key = root / "munge.key"
    key.write_bytes(os.urandom(1024))
    key.chmod(0o600)
    conf = root / "slurm.conf"
    conf.write_text(_conf(root, cpus or os.cpu_count() or 1, memory_mb))
    env = {**os.environ, "SLURM_CONF": str(conf)}
    subprocess.run(["munged", "--force", f"--socket={root}/munge.sock", f"--key-file={key}",
                    f"--pid-file={root}/munged.pid", f"--log-file={root}/munged.log",
                    f"--seed-file={root}/munge.seed"], check=True)
    try:
        subprocess.run(["slurmctld", "-f", str(conf)], env=env, check=True)
        subprocess.run(["slurmd", "-f", str(conf)], env=env, check=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            out = subprocess.run(["sinfo", "-h", "-o", "%T"], env=env, capture_output=True, text=True).stdout
            if out.strip() == "idle":
                break
            time.sleep(0.5)
        else:
            raise RuntimeError(f"slurmd did not register: {(root / 'slurmctld.log').read_text()[-2000:]}")
        yield env
    finally:
        _stop(root, env)


def _ours(root: Path) -> list[int]:
    """This cluster's daemons and step daemons (slurmstepd runs in ``root``, the others name
    their files there), found in /proc: a step daemon outlives its slurmd."""
    pids = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            if proc.joinpath("comm").read_text().strip() not in ("munged", "slurmctld", "slurmd", "slurmstepd"):
                continue
            cmdline = proc.joinpath("cmdline").read_bytes().decode(errors="replace")
            if str(root) in cmdline or os.readlink(proc / "cwd").startswith(str(root)):
                pids.append(int(proc.name))
    return pids


def _stop(root: Path, env: dict) -> None:
    """Cancel every job (and wait for Slurm to end them: KillWait), then stop the daemons,
    killing whatever of this cluster is still there after 10 s."""
    subprocess.run(["scancel", "--user", str(os.getuid())], env=env, capture_output=True)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        out = subprocess.run(["squeue", "-h"], env=env, capture_output=True, text=True)
        if out.returncode != 0 or not out.stdout.strip():
            break
        time.sleep(1)
    for pid in _ours(root):
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 10
    while _ours(root) and time.monotonic() < deadline:
        time.sleep(0.5)
    for pid in _ours(root):
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)


def job_state(env: dict, job: str) -> str:
    out = subprocess.run(["scontrol", "show", "job", job], env=env, capture_output=True, text=True).stdout
    for field in out.split():
        if field.startswith("JobState="):
            return field.split("=", 1)[1]
    return "UNKNOWN"


def wait_for(env: dict, job: str, states: set[str], timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = job_state(env, job)
        if state in states:
            return state
        time.sleep(2)
    raise TimeoutError(f"job {job} is {job_state(env, job)} after {timeout:.0f} s (waited for {states})")
