"""Debian's ``prometheus`` on loopback, scraping the running layers, and its HTTP API.

    with Prometheus.start(binary, {"layer1_discovery": "127.0.0.1:9101"}, work_dir) as prom:
        prom.wait_targets_up(timeout=20)
        prom.query('grpc_server_handled_total{job="layer1_discovery"}')

The scrape config is generated (one job per layer, its metrics port); it is written as
JSON, which Prometheus reads as YAML. Storage and logs stay in ``work_dir``.
"""

from __future__ import annotations

import datetime
import json
import re
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

LOOPBACK = "127.0.0.1"
BINARY = "prometheus"
#: The go-grpc-prometheus counter every layer's server exports (the framework's interceptor).
HANDLED = "grpc_server_handled_total"


class PrometheusError(RuntimeError):
    pass


def find_binary() -> str | None:
    """The prometheus executable on PATH or Debian's /usr/bin/prometheus, else None."""
    return shutil.which(BINARY) or shutil.which(f"/usr/bin/{BINARY}")


def scrape_config(targets: Mapping[str, str], interval_s: float = 1.0) -> dict[str, Any]:
    """One scrape job per layer (job name -> host:port of its /metrics)."""
    for job, target in targets.items():
        host = target.rsplit(":", 1)[0]
        if host not in (LOOPBACK, "localhost", "[::1]"):
            raise ValueError(f"{job}: metrics target {target} is not on loopback")
    interval = f"{max(1, round(interval_s * 1000))}ms"
    return {
        "global": {"scrape_interval": interval, "scrape_timeout": interval, "evaluation_interval": interval},
        "scrape_configs": [
            {"job_name": job, "metrics_path": "/metrics", "static_configs": [{"targets": [target]}]}
            for job, target in sorted(targets.items())
        ],
    }


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((LOOPBACK, 0))
        return int(s.getsockname()[1])


class Prometheus:
    """A running Prometheus; stop() (or leaving the ``with``) ends it."""

    def __init__(self, process: subprocess.Popen[bytes], port: int, log_path: Path) -> None:
        self.process = process
        self.port = port
        self.log_path = log_path

    @classmethod
    def start(cls, binary: str, targets: Mapping[str, str], work_dir: Path, *,
              interval_s: float = 1.0, ready_timeout: float = 30.0) -> Prometheus:
        work_dir.mkdir(parents=True, exist_ok=True)
        config = work_dir / "prometheus.yml"
        config.write_text(json.dumps(scrape_config(targets, interval_s), indent=2) + "\n")
        port = _free_port()
        log_path = work_dir / "prometheus.log"
        with open(log_path, "wb") as log:
            process = subprocess.Popen(
                [binary, f"--config.file={config}", f"--web.listen-address={LOOPBACK}:{port}",
                 f"--storage.tsdb.path={work_dir / 'data'}", "--storage.tsdb.retention.time=1h",
                 "--log.level=warn"],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )
        prom = cls(process, port, log_path)
        try:
            prom._wait_ready(ready_timeout)
        except BaseException:
            prom.stop()
            raise
        return prom

    def __enter__(self) -> Prometheus:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def stop(self) -> int:
        """SIGTERM (SIGKILL after 10 s); the exit status (0: it shut down cleanly)."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise PrometheusError(f"prometheus exited with status {self.process.returncode}:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(f"{self.url}/-/ready", timeout=1) as reply:
                    if reply.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            if time.monotonic() > deadline:
                raise PrometheusError(f"prometheus not ready on {self.url} within {timeout:g} s:\n{self.log_tail()}")
            time.sleep(0.1)

    def api(self, path: str, **params: str) -> Any:
        """GET /api/v1/<path>; the `data` of a success reply, PrometheusError otherwise."""
        url = f"{self.url}/api/v1/{path}" + (f"?{urllib.parse.urlencode(params)}" if params else "")
        try:
            with urllib.request.urlopen(url, timeout=10) as reply:
                body = json.loads(reply.read())
        except urllib.error.HTTPError as err:
            body = json.loads(err.read() or b"{}")
        except (urllib.error.URLError, OSError) as err:
            raise PrometheusError(f"{url}: {err}") from err
        if body.get("status") != "success":
            raise PrometheusError(f"{url}: {body.get('errorType')}: {body.get('error')}")
        return body["data"]

    def targets(self) -> dict[str, dict[str, Any]]:
        """job -> the active target's state (health, lastError, scrapeUrl)."""
        return {t["labels"]["job"]: t for t in self.api("targets", state="active")["activeTargets"]}

    def query(self, expr: str) -> list[dict[str, Any]]:
        data = self.api("query", query=expr)
        return data["result"] if data["resultType"] == "vector" else [{"value": data["result"]}]

    def value(self, expr: str) -> float:
        """The single value of an instant query that sums to one series (0 when empty)."""
        result = self.query(f"sum({expr})")
        return float(result[0]["value"][1]) if result else 0.0

    def wait_targets_up(self, jobs: set[str], timeout: float) -> dict[str, dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while True:
            targets = self.targets()
            if all(targets.get(job, {}).get("health") == "up" for job in jobs):
                return targets
            if time.monotonic() > deadline:
                state = {job: (targets.get(job, {}).get("health", "absent"), targets.get(job, {}).get("lastError", ""))
                         for job in sorted(jobs)}
                raise PrometheusError(f"targets not up within {timeout:g} s: {state}")
            time.sleep(0.2)

    def handled_by_code(self, job: str, method: str | None = None) -> dict[str, float]:
        """grpc_server_handled_total of one layer (one method, or all), by grpc_code, as scraped."""
        selector = f'job="{job}"' + (f',grpc_method="{method}"' if method else "")
        result = self.query(f"sum by (grpc_code) ({HANDLED}{{{selector}}})")
        return {r["metric"]["grpc_code"]: float(r["value"][1]) for r in result}

    def wait_fresh_scrapes(self, jobs: Iterable[str], timeout: float) -> None:
        """Until every job was scraped twice from now on (the first may have begun before
        the last RPC's reply), so queries see every RPC answered until now."""
        jobs = list(jobs)
        for _ in range(2):
            moment = time.time()
            for job in jobs:
                self.wait_scrape_after(job, moment, timeout)

    def wait_scrape_after(self, job: str, moment: float, timeout: float) -> None:
        """Until the job's last scrape started after `moment` (time.time())."""
        deadline = time.monotonic() + timeout
        while True:
            last = self.targets().get(job, {}).get("lastScrape", "")
            if last and _epoch(last) > moment:
                return
            if time.monotonic() > deadline:
                raise PrometheusError(f"{job}: no scrape after {moment} within {timeout:g} s (last: {last})")
            time.sleep(0.2)


_RFC3339 = re.compile(r"^(?P<base>.+T\d\d:\d\d:\d\d)(?P<frac>\.\d+)?(?P<zone>Z|[+-]\d\d:\d\d)$")


def _epoch(rfc3339: str) -> float:
    """Prometheus' lastScrape ("2026-12-01T17:01:02.123456789Z") as seconds since the epoch."""
    match = _RFC3339.match(rfc3339)
    if not match:
        raise PrometheusError(f"not an RFC 3339 time: {rfc3339!r}")
    zone = "+00:00" if match["zone"] == "Z" else match["zone"]
    moment = datetime.datetime.fromisoformat(match["base"] + zone)
    return moment.timestamp() + float(match["frac"] or 0)
