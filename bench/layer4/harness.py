"""What the layer-4 benchmarks share: the machine they ran on, the ExecutionService
in its own process, module deployment, and writing the results.
"""

from __future__ import annotations

import datetime
import importlib.metadata
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from chimera.v1 import execution_pb2, execution_pb2_grpc


def machine_info() -> dict[str, Any]:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass

    def version(dist: str) -> str:
        try:
            return importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            return "unknown"

    return {
        "nproc": len(os.sched_getaffinity(0)),
        "cpu_model": model,
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "wasmtime": version("wasmtime"),
        "grpcio": version("grpcio"),
        "protobuf": version("protobuf"),
        # Other work on the machine skews every figure; keep the load with them.
        "loadavg_1m_at_start": round(os.getloadavg()[0], 2),
    }


@contextmanager
def server_process(concurrency: int, cache_dir: str, log_dir: str) -> Iterator[str]:
    """Starts ``chimera.execution.main`` as a subprocess; yields its target."""
    port_file = Path(tempfile.mkstemp(dir=log_dir, suffix=".port")[1])
    port_file.unlink()
    log = open(Path(log_dir) / f"server-c{concurrency}-{time.time_ns()}.log", "w")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "chimera.execution.main",
            "--port", "0",
            "--metrics-port", "off",
            "--port-file", str(port_file),
            "--trust-unvalidated-modules",
            "--concurrency", str(concurrency),
            "--cache-dir", cache_dir,
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=log,
    )  # fmt: skip
    try:
        end = time.monotonic() + 60
        while not port_file.exists():
            if proc.poll() is not None or time.monotonic() > end:
                raise RuntimeError(f"server did not start; see {log.name}")
            time.sleep(0.02)
        yield f"127.0.0.1:{port_file.read_text().strip()}"
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def deploy(stub: execution_pb2_grpc.ExecutionServiceStub, wasm: bytes) -> float:
    t0 = time.perf_counter()
    stub.DeployModule(
        execution_pb2.DeployModuleRequest(
            module_name="kernel", wasm=wasm, verdict_id="bench-unvalidated", activate=True
        ),
        timeout=120,
    )
    return time.perf_counter() - t0


def emit(
    results: dict[str, Any], out: str | None, print_summary: Callable[[dict[str, Any]], None]
) -> int:
    """Prints the benchmark's table and, with ``out``, writes its JSON; the exit status."""
    print_summary(results)
    if out:
        path = Path(out)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(results, indent=2) + "\n")
        print(f"wrote {path}")
    return 0
