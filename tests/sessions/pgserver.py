"""A throwaway PostgreSQL server for the store tests: started in a temp directory on a free
port, listening on a unix socket only, always stopped. As root it runs as the postgres user."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path


class NoPostgres(Exception):
    pass


def _bin(name: str) -> str:
    found = shutil.which(name) or next(iter(sorted(
        glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)), None)
    if not found:
        raise NoPostgres(f"{name} not found on PATH or in /usr/lib/postgresql/*/bin")
    return found


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PgServer:
    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="smp-pg-"))
        self.data = self.root / "data"
        self.port = _free_port()
        self.prefix: list[str] = []
        self.started = False
        if os.geteuid() == 0:
            # initdb refuses to run as root; the server files belong to postgres.
            try:
                pw = pwd.getpwnam("postgres")
            except KeyError:
                raise NoPostgres("running as root and there is no postgres user") from None
            os.chown(self.root, pw.pw_uid, pw.pw_gid)
            self.prefix = ["runuser", "-u", "postgres", "--"]

    def _run(self, *cmd: str) -> None:
        out = subprocess.run([*self.prefix, *cmd], capture_output=True, text=True, timeout=60)
        if out.returncode != 0:
            raise NoPostgres(f"{Path(cmd[0]).name} failed: "
                             + (out.stderr or out.stdout).strip().splitlines()[-1])

    def start(self) -> str:
        self._run(_bin("initdb"), "-D", str(self.data), "-U", "postgres", "-A", "trust",
                  "--no-sync", "-E", "UTF8", "--locale=C")
        self.resume()
        self.started = True
        return self.url("postgres")

    def pause(self) -> None:
        """Stop the server but keep its data: a database that went away."""
        self._run(_bin("pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop")

    def resume(self) -> None:
        # No fsync: the machine does not crash under a test, only the server does (pause()
        # is an immediate stop). Commits are synchronous, so a committed event survives that
        # stop, as on a real server; with asynchronous commits the record lost a committed
        # run at the stop, 1 run in about 10 of the "server gone mid-run" case.
        opts = (f"-k {self.root} -p {self.port} -c listen_addresses='' -c fsync=off "
                "-c full_page_writes=off")
        self._run(_bin("pg_ctl"), "-D", str(self.data), "-o", opts, "-l",
                  str(self.root / "log"), "-w", "-t", "30", "start")

    def url(self, db: str) -> str:
        return f"postgresql+psycopg://postgres@/{db}?host={self.root}&port={self.port}"

    def stop(self) -> None:
        if self.started:
            subprocess.run([*self.prefix, _bin("pg_ctl"), "-D", str(self.data), "-m",
                            "immediate", "-w", "stop"], capture_output=True, timeout=60)
            self.started = False
        shutil.rmtree(self.root, ignore_errors=True)
