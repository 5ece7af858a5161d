"""`smp` as a person runs it, in a process of its own (its own environment, working directory,
standard streams and exit status), without paying the interpreter's start and the imports
(about 1 s of CPU) each time: one zygote per test process has imported the command line and
the record's code, and forks a child for each command.

The child is what `python -m console ARGS` would be, started from a process that had already
imported those modules: anything a module reads from the environment at import time would be
the zygote's, so the commands read it when they run (the tests that change it say so).
"""

from __future__ import annotations

import atexit
import json
import os
import select
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

_ZYGOTE = r"""
import json, os, sys, traceback
import console.cli, sessions.store, sessions.history, sessions.export  # the heavy imports, once
sys.stdout.flush()
for line in sys.stdin:
    req = json.loads(line)
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            os.environ.clear()
            os.environ.update(req["env"])
            os.chdir(req["cwd"])
            for fd, path, flags in ((0, os.devnull, os.O_RDONLY),
                                    (1, req["out"], os.O_WRONLY | os.O_TRUNC),
                                    (2, req["err"], os.O_WRONLY | os.O_TRUNC)):
                os.dup2(os.open(path, flags), fd)
            sys.stdin = open(0, closefd=False)  # not the zygote's buffered requests
            try:
                code = console.cli.main(req["args"])
            except SystemExit as exc:  # argparse, --help, --version
                if isinstance(exc.code, str):
                    print(exc.code, file=sys.stderr)
                code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
            except BaseException:
                traceback.print_exc()  # as the interpreter would print it
                code = 1
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code or 0)
    _, status = os.waitpid(pid, 0)
    sys.stdout.write(json.dumps({"code": os.waitstatus_to_exitcode(status)}) + "\n")
    sys.stdout.flush()
"""


class _Zygote:
    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _ZYGOTE], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
        self.dir = tempfile.mkdtemp(prefix="smp-cli-")

    def run(self, args: list[str], env: dict[str, str], cwd: Path, timeout: float
            ) -> subprocess.CompletedProcess:
        out, err = Path(self.dir, "out"), Path(self.dir, "err")
        out.write_bytes(b"")
        err.write_bytes(b"")
        request = {"args": args, "env": env, "cwd": str(cwd), "out": str(out), "err": str(err)}
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps(request).encode() + b"\n")
        self.proc.stdin.flush()
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        if not ready:
            self.close()
            raise subprocess.TimeoutExpired(["smp", *args], timeout)
        reply = self.proc.stdout.readline()
        assert reply, "the zygote died"
        code = json.loads(reply)["code"]
        return subprocess.CompletedProcess(["smp", *args], code, out.read_text(),
                                           err.read_text())

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


_zygote: _Zygote | None = None


def run_smp(args: list[str], *, env: dict[str, str], cwd: Path | None = None,
            timeout: float = 60) -> subprocess.CompletedProcess:
    """`python -m console ARGS` with exactly `env`, in `cwd`, standard input empty."""
    global _zygote
    if _zygote is None or _zygote.proc.poll() is not None:
        _zygote = _Zygote()
        atexit.register(_zygote.close)
    return _zygote.run([str(a) for a in args], env, Path(cwd or ROOT), timeout)
