"""The build under remote-cache faults, against the real Buildbarn storage.

Run through ci/cache_chaos.sh (see there for the flags). Every phase builds and
tests the same small target set in one output base, after a `bazel clean` (so
neither the output tree nor Bazel's local action cache answers), with
`--disk_cache=` (so no disk cache masks the remote one), and its final outputs
(the targets' default outputs, named by the build event stream) are hashed and
compared with a clean local build's:

  reference  no remote cache: the digests every other phase must reproduce.
  killed     an empty cache; bb_storage is SIGKILLed once it has stored CAS
             blobs of this build, while Bazel still runs. The build must pass,
             locally, and Bazel's warnings are printed.
  fill       a fresh cache, filled by a cold build (checked, not a case).
  corrupt    one byte of a stored blob (the largest final output) is flipped in
             Buildbarn's block file on disk; the next build must not use it (it
             re-runs that action) and must produce the reference digests, and the
             build after it (heal) must be served that output from the cache.
  evicted    bb_storage stopped cleanly (its state synced), its CAS files
             deleted and the action cache kept: every action-cache hit now
             names blobs that are gone, and the build must execute instead.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BUILDBARN = REPO / "ci" / "buildbarn.sh"
CASES = ("killed", "corrupt", "evicted")

# One layer's Rust core (its library, and its unit-test binary compiled and run:
# the longest actions) and the contracts' descriptor-set genrule (11 short protoc
# actions and a `cat`): a real slice of the graph, Rust and not, with enough
# actions that the cache is read and written all through the build, which builds
# from scratch in about half a minute on 2 cores and needs no pip repository.
# Layer 6 has the smallest core.
DEFAULT_TARGETS = (
    "//layers/layer6_evolution:evolution_core",
    "//layers/layer6_evolution:evolution_core_test",
    "//proto/chimera/v1:all_descriptor_set",
)

# The per-operation counter bb_storage exports for each storage (CAS and AC).
OPERATIONS_METRIC = "buildbarn_blobstore_blob_access_operations_duration_seconds_count"


class InputError(Exception):
    """Bad flags: reported as one line, exit 2."""


class Interrupted(Exception):
    """SIGTERM or SIGINT: stop what was started, then exit."""


def log(message: str) -> None:
    print(f"cache chaos: {message}", flush=True)


def free_loopback_ports(count: int) -> list[int]:
    """Distinct free 127.0.0.1 ports (all held until each is picked)."""
    with contextlib.ExitStack() as held:
        sockets = [held.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) for _ in range(count)]
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]


def process_alive(pid: int) -> bool:
    # Neither process is this one's child (bazel's server daemonizes, and
    # ci/buildbarn.sh starts bb_storage with setsid), so no zombie lingers in /proc.
    return Path(f"/proc/{pid}").exists()


# --- Buildbarn -------------------------------------------------------------------------


class Buildbarn:
    """bb_storage alone (`ci/buildbarn.sh start cache`) on two free loopback ports,
    with its own data directory, so a cache on the default ports is untouched."""

    def __init__(self, data: Path):
        self.data = data
        self.port, self.metrics_port = free_loopback_ports(2)
        self.env = dict(
            os.environ,
            BUILDBARN_DATA=str(data),
            BUILDBARN_PORT=str(self.port),
            BUILDBARN_STORAGE_METRICS_PORT=str(self.metrics_port),
            # 1 GiB of blocks (14 of ~73 MiB): ample for these targets, and a
            # smaller sparse file to search for a blob.
            BUILDBARN_CAS_SIZE_GB="1",
        )

    @property
    def url(self) -> str:
        return f"grpc://127.0.0.1:{self.port}"

    @property
    def cas_dir(self) -> Path:
        return self.data / "storage-cas"

    @property
    def log_file(self) -> Path:
        return self.data / "logs" / "storage.log"

    def _script(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run([str(BUILDBARN), *args], env=self.env, capture_output=True, text=True)

    def start(self) -> None:
        result = self._script("start", "cache")
        if result.returncode != 0:
            raise RuntimeError(f"ci/buildbarn.sh start cache failed: {result.stderr.strip()}")

    def stop(self) -> None:
        self._script("stop")

    def pid(self) -> int | None:
        with contextlib.suppress(OSError, ValueError):
            pid = int((self.data / "run" / "storage.pid").read_text())
            if process_alive(pid):
                return pid
        return None

    def operations(self) -> dict[str, float]:
        """bb_storage's operations so far, keyed "<ac|cas> <Operation> <grpc_code>"."""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5) as reply:
            text = reply.read().decode()
        counts: dict[str, float] = {}
        for line in text.splitlines():
            if not line.startswith(OPERATIONS_METRIC + "{"):
                continue
            labels = dict(re.findall(r'(\w+)="([^"]*)"', line.split("}", 1)[0]))
            key = f"{labels.get('storage_type')} {labels.get('operation')} {labels.get('grpc_code')}"
            counts[key] = counts.get(key, 0.0) + float(line.rsplit(" ", 1)[1])
        return counts


def delta(after: dict[str, float], before: dict[str, float]) -> dict[str, int]:
    return {key: int(after[key] - before.get(key, 0)) for key in sorted(after) if after[key] > before.get(key, 0)}


def corrupt_blob_on_disk(blocks: Path, content: bytes) -> list[int]:
    """Flips one byte of every stored copy of `content` in bb_storage's block file.

    Buildbarn's "local" backend keeps each blob contiguous inside one block of a
    (sparse) file, at an offset only its key-location map knows; that map is a
    hash table on disk, so rather than decoding it the blob is found by its bytes:
    a 4 KiB window from the middle of the blob, searched in the file's data extents
    only (SEEK_DATA/SEEK_HOLE). Returns the file offsets flipped."""
    window_start = max(0, len(content) // 2 - 2048)
    window = content[window_start : window_start + 4096]
    flipped = []
    # Positioned reads and writes only (pread/pwrite): SEEK_DATA/SEEK_HOLE move the
    # descriptor's offset, which a buffered file object would not know about.
    fd = os.open(blocks, os.O_RDWR)
    try:
        size = os.fstat(fd).st_size
        position = 0
        while position < size:
            try:
                start = os.lseek(fd, position, os.SEEK_DATA)
            except OSError:  # ENXIO: no data after position
                break
            end = os.lseek(fd, start, os.SEEK_HOLE)
            extent = os.pread(fd, end - start, start)
            found = extent.find(window)
            while found >= 0:
                offset = start + found + len(window) // 2
                os.pwrite(fd, bytes([extent[found + len(window) // 2] ^ 0xFF]), offset)
                flipped.append(offset)
                found = extent.find(window, found + 1)
            position = end
        os.fsync(fd)
    finally:
        os.close(fd)
    return flipped


# --- Bazel -----------------------------------------------------------------------------


@dataclass
class Build:
    """One phase's build: its exit status, log, final outputs and spawns."""

    name: str
    returncode: int
    log_text: str
    outputs: dict[str, str]  # path under the exec root -> sha256
    tests_passed: bool
    spawns: list[dict]
    seconds: float

    def warnings(self) -> list[str]:
        """Bazel's WARNING lines, each joined with its next line (the cause)."""
        lines = self.log_text.splitlines()
        found = []
        for index, line in enumerate(lines):
            if line.startswith("WARNING:"):
                cause = lines[index + 1].strip() if index + 1 < len(lines) else ""
                text = line if not cause or cause.startswith(("INFO:", "WARNING:", "ERROR:", "[")) else f"{line} {cause}"
                if text not in found:
                    found.append(text)
        return found

    def remote_hits(self) -> int:
        return sum(1 for spawn in self.spawns if spawn.get("remoteCacheHit"))

    def executed(self) -> int:
        return sum(1 for spawn in self.spawns if not spawn.get("remoteCacheHit"))

    def spawn_producing(self, output: str) -> dict | None:
        for spawn in self.spawns:
            if any(out.get("path") == output for out in spawn.get("actualOutputs", [])):
                return spawn
        return None


def read_json_stream(path: Path) -> list[dict]:
    """Concatenated JSON objects (Bazel's execution log and build event file)."""
    if not path.exists():
        return []
    text, decoder, objects, index = path.read_text(), json.JSONDecoder(), [], 0
    while True:
        while index < len(text) and text[index].isspace():
            index += 1
        if index >= len(text):
            return objects
        value, index = decoder.raw_decode(text, index)
        objects.append(value)


def final_outputs(bep: list[dict], execroot: Path) -> dict[str, str]:
    """sha256 of every file in the build's named sets of files (the requested
    targets' default outputs), keyed by its path under the exec root."""
    digests = {}
    for event in bep:
        for entry in event.get("namedSetOfFiles", {}).get("files", []):
            path = "/".join([*entry.get("pathPrefix", []), entry["name"]])
            digests[path] = hashlib.sha256((execroot / path).read_bytes()).hexdigest()
    return digests


def tests_passed(bep: list[dict]) -> bool:
    summaries = [event["testSummary"] for event in bep if "testSummary" in event]
    return bool(summaries) and all(summary.get("overallStatus") == "PASSED" for summary in summaries)


class Bazel:
    def __init__(self, bazel: str, output_base: Path, targets: list[str], logs: Path, timeout: int):
        self.bazel = bazel
        self.output_base = output_base
        self.targets = targets
        self.logs = logs
        self.timeout = timeout
        self.running: subprocess.Popen | None = None

    @property
    def execroot(self) -> Path:
        return self.output_base / "execroot" / "chimera"

    def command(self, *args: str) -> list[str]:
        return [self.bazel, f"--output_base={self.output_base}", *args]

    def version(self) -> str:
        """`bazel info release`; Debian's bazel-bootstrap says "development version",
        so its package version is added."""
        release = subprocess.run(self.command("info", "release"), cwd=REPO, capture_output=True, text=True, check=True).stdout.strip()
        package = subprocess.run(["dpkg-query", "-W", "-f=${Version}", "bazel-bootstrap"], capture_output=True, text=True)
        if package.returncode == 0 and package.stdout:
            release += f" (Debian bazel-bootstrap {package.stdout})"
        return release

    def start(self, name: str, remote_cache: str) -> tuple[subprocess.Popen, Path, Path, Path]:
        """`bazel clean`, then `bazel test` of the targets, in the background."""
        subprocess.run(self.command("clean"), cwd=REPO, capture_output=True, check=True)
        exec_log = self.logs / f"{name}.exec.json"
        bep = self.logs / f"{name}.bep.json"
        log_path = self.logs / f"{name}.log"
        command = self.command(
            "test",
            "--disk_cache=",
            f"--remote_cache={remote_cache}",
            "--remote_upload_local_results=true",
            # With --remote_cache set, Bazel 4 uploads the files a build event file
            # names to the cache ("remote" upload strategy); once the cache is killed
            # that upload fails and Bazel exits 38 although every action and test
            # passed ("ERROR: Unable to write all BEP events to file due to
            # 'java.io.IOException: findMissingBlobs(1) for bes-upload: UNAVAILABLE:
            # io exception'", seen in this script's first run). "local" keeps the
            # event file's references local (file:// URIs).
            "--experimental_build_event_upload_strategy=local",
            "--color=no",
            "--curses=no",
            f"--execution_log_json_file={exec_log}",
            f"--build_event_json_file={bep}",
            *self.targets,
        )
        with open(log_path, "w") as sink:
            sink.write("$ " + " ".join(command) + "\n")
            sink.flush()
            self.running = subprocess.Popen(command, cwd=REPO, stdout=sink, stderr=subprocess.STDOUT)
        return self.running, exec_log, bep, log_path

    def finish(self, name: str, started: tuple[subprocess.Popen, Path, Path, Path], t0: float) -> Build:
        process, exec_log, bep_path, log_path = started
        try:
            returncode = process.wait(timeout=self.timeout)
        except subprocess.TimeoutExpired:
            self.interrupt()
            returncode = 124
        self.running = None
        bep = read_json_stream(bep_path)
        return Build(
            name=name,
            returncode=returncode,
            log_text=log_path.read_text(),
            outputs=final_outputs(bep, self.execroot) if returncode == 0 else {},
            tests_passed=tests_passed(bep),
            spawns=read_json_stream(exec_log),
            seconds=round(time.monotonic() - t0, 1),
        )

    def build(self, name: str, remote_cache: str = "") -> Build:
        t0 = time.monotonic()
        return self.finish(name, self.start(name, remote_cache), t0)

    def interrupt(self) -> None:
        """Stops a build in flight as Ctrl-C would (the client cancels it), then kills it."""
        process, self.running = self.running, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def server_pid(self) -> int | None:
        with contextlib.suppress(OSError, ValueError):
            return int((self.output_base / "server" / "server.pid.txt").read_text())
        return None

    def shutdown(self) -> None:
        if self.output_base.exists():
            subprocess.run(self.command("shutdown"), cwd=REPO, capture_output=True)


# --- The cases -------------------------------------------------------------------------


@dataclass
class Case:
    name: str
    checks: dict[str, object] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def check(self, ok: bool, what: str, **figures: object) -> None:
        self.checks.update(figures)
        if not ok:
            self.failures.append(what)

    @property
    def passed(self) -> bool:
        return not self.failures

    def report(self, summary: str) -> None:
        verdict = "PASS" if self.passed else "FAIL"
        failed = "" if self.passed else f" -- failed: {'; '.join(self.failures)}"
        print(f"{verdict} {self.name}: {summary}{failed}", flush=True)


def compare(case: Case, build: Build, reference: Build) -> None:
    """The checks every build of a case must pass: exit 0, the test passed, and
    the clean local build's digests."""
    case.check(build.returncode == 0, f"{build.name}: bazel exited {build.returncode} (log: logs/{build.name}.log)")
    case.check(build.tests_passed, f"{build.name}: the test did not pass")
    differing = sorted(path for path in reference.outputs if build.outputs.get(path) != reference.outputs[path])
    case.check(build.returncode == 0 and not differing, f"{build.name}: outputs differ from the clean local build: {differing[:3]}")
    case.checks.setdefault("builds", {})[build.name] = {
        "bazel_exit": build.returncode,
        "seconds": build.seconds,
        "remote_cache_hits": build.remote_hits(),
        "executed": build.executed(),
        "outputs_compared": len(reference.outputs),
        "outputs_differing": differing,
    }


def case_killed(bazel: Bazel, buildbarn: Buildbarn, reference: Build, puts_before_kill: int) -> Case:
    """SIGKILL of bb_storage while Bazel builds and tests against it.

    Bazel 4.2.3 keeps going: each failed lookup or upload is a warning and the
    spawn runs locally. It has no circuit breaker, though: every spawn's lookup
    and upload after the kill are retried (--remote_retries=5, exponential backoff)
    first, so this build takes about 4x the clean one (68 s vs 17 s measured).
    The cache is killed after its first CAS write (a real upload of this build)
    and only if Bazel is still running then."""
    case = Case("killed")
    buildbarn.start()
    t0 = time.monotonic()
    started = bazel.start("killed", buildbarn.url)
    process, pid = started[0], buildbarn.pid()
    cas_writes, killed_while_building, deadline = 0, False, time.monotonic() + bazel.timeout
    while pid is not None and process.poll() is None and time.monotonic() < deadline:
        cas_writes = int(sum(n for key, n in buildbarn.operations().items() if key.startswith("cas Put ")))
        if cas_writes >= puts_before_kill:
            os.kill(pid, signal.SIGKILL)
            killed_while_building = process.poll() is None
            break
        time.sleep(0.1)
    killed_after = round(time.monotonic() - t0, 1)
    build = bazel.finish("killed", started, t0)
    buildbarn.stop()  # clears the dead server's pid file
    case.check(killed_while_building, "the build ended before the cache was killed", cas_blobs_stored_before_kill=cas_writes, killed_after_seconds=killed_after)
    compare(case, build, reference)
    remote_warnings = [line for line in build.warnings() if "remote cache" in line.lower()]
    case.check(bool(remote_warnings), "Bazel printed no warning about the remote cache", bazel_warnings=remote_warnings)
    for line in remote_warnings[:4]:
        print(f"  bazel: {line}")
    same = not case.checks["builds"]["killed"]["outputs_differing"] and build.returncode == 0
    case.report(
        f"bb_storage SIGKILLed {killed_after} s into `bazel test` after {cas_writes} CAS writes; bazel exit "
        f"{build.returncode}, {build.executed()} spawns run locally, the {len(reference.outputs)} final outputs "
        f"{'equal' if same else 'NOT equal'} to the clean local build's"
    )
    return case


def fill(bazel: Bazel, buildbarn: Buildbarn, reference: Build) -> Build:
    shutil.rmtree(buildbarn.data, ignore_errors=True)
    buildbarn.start()
    build = bazel.build("fill", buildbarn.url)
    if build.returncode != 0 or build.outputs != reference.outputs:
        raise RuntimeError(f"the cold build that fills the cache failed or differs (exit {build.returncode}; log {bazel.logs}/fill.log)")
    log(f"filled the cache: {build.executed()} spawns executed and uploaded in {build.seconds} s")
    return build


def case_corrupt(bazel: Bazel, buildbarn: Buildbarn, reference: Build) -> Case:
    """One stored blob flipped on disk, then two builds: the one meeting it and the next.

    What happens (measured): bb_storage checks every CAS blob it serves against its
    digest and fails the read before the blob's last chunk leaves it, so Bazel never
    receives the wrong bytes and its own check (--remote_verify_downloads, on by
    default in 4.2.3) has nothing to catch. bb_storage logs "Releasing N blocks due
    to a data integrity error" and from then on treats the bad block, and every
    older one, as gone; Bazel retries the read, gets NOT_FOUND, takes it as a cache
    miss (silently, as for any miss), runs the action and uploads the good blob,
    which FindMissingBlobs now reports missing. The next build is served it. The
    actions whose blobs shared the released blocks are misses in these two builds
    too (counted, not failures)."""
    case = Case("corrupt")
    # The largest final output (the core's test binary).
    victim = max(reference.outputs, key=lambda path: (bazel.execroot / path).stat().st_size)
    content = (bazel.execroot / victim).read_bytes()
    flipped = corrupt_blob_on_disk(buildbarn.cas_dir / "blocks", content)
    case.check(bool(flipped), "the blob was not found in bb_storage's block file", blob=victim, blob_bytes=len(content), flipped_offsets=flipped)
    log(f"flipped one byte of {victim} ({len(content)} bytes, sha256 {reference.outputs[victim][:12]}…) at offset(s) {flipped} of its block file")

    before = buildbarn.operations()
    met = bazel.build("corrupt", buildbarn.url)
    case.checks["storage_operations_corrupt_build"] = delta(buildbarn.operations(), before)
    compare(case, met, reference)
    storage_errors = [line.strip() for line in buildbarn.log_file.read_text().splitlines() if "data integrity error" in line]
    case.check(bool(storage_errors), "bb_storage reported no data integrity error reading the blob", buildbarn_log=storage_errors[:4])
    released = sum(int(n) for line in storage_errors for n in re.findall(r"Releasing (\d+) blocks", line))
    case.checks["blocks_released"] = released
    victim_spawn = met.spawn_producing(victim)
    case.check(
        victim_spawn is not None and not victim_spawn.get("remoteCacheHit"),
        "the action whose output was corrupted was not re-executed",
        bazel_warnings=met.warnings()[:4],
    )
    for line in storage_errors[:2]:
        print(f"  bb_storage: {line[:300]}")
    for line in met.warnings()[:3]:
        print(f"  bazel: {line[:300]}")

    healed = bazel.build("heal", buildbarn.url)
    compare(case, healed, reference)
    healed_spawn = healed.spawn_producing(victim)
    served = healed_spawn is not None and bool(healed_spawn.get("remoteCacheHit"))
    case.check(served, "the next build was not served the re-uploaded blob from the cache", heal_served_from_cache=served)
    case.report(
        f"{victim.rsplit('/', 1)[-1]} flipped on disk; bb_storage failed the read (digest check) and released "
        f"{released} blocks; the next build re-ran its action ({met.executed()} spawns run, {met.remote_hits()} cache "
        f"hits), outputs equal to the clean build's; the build after it was served the re-uploaded blob "
        f"({healed.remote_hits()} hits, {healed.executed()} run: the released blocks' other blobs)"
    )
    return case


def case_evicted(bazel: Bazel, buildbarn: Buildbarn, reference: Build) -> Case:
    """The action cache kept, the CAS emptied: every AC hit names missing blobs."""
    case = Case("evicted")
    # SIGTERM: bb_storage syncs its blocks and writes its persistent state, so the
    # action cache survives the restart; the CAS's block file, key-location map and
    # state are deleted, as if all its blocks had been rotated out. (The AC here is
    # a plain store, without Buildbarn's completenessChecking, which would hide
    # such entries: it serves them, as a cache whose CAS evicts first would.)
    buildbarn.stop()
    for entry in buildbarn.cas_dir.iterdir():
        if entry.is_dir():
            shutil.rmtree(entry)
        else:
            entry.unlink()
    buildbarn.start()
    before = buildbarn.operations()
    build = bazel.build("evicted", buildbarn.url)
    operations = delta(buildbarn.operations(), before)
    compare(case, build, reference)
    ac_hits = operations.get("ac Get OK", 0)
    cas_missing = sum(n for key, n in operations.items() if key.startswith("cas ") and key.endswith(" NotFound"))
    case.check(ac_hits > 0, "the action cache served no entry (lost in the restart?)", ac_entries_served=ac_hits, storage_operations=operations)
    case.check(build.remote_hits() == 0 and build.executed() > 0, "an action was served from a cache without its blobs", cas_reads_not_found=cas_missing)
    case.report(
        f"the action cache served {ac_hits} entries whose blobs were gone ({cas_missing} CAS reads NotFound); "
        f"Bazel executed all {build.executed()} spawns; outputs equal to the clean build's"
    )
    return case


# --- Main ------------------------------------------------------------------------------


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2 (main)
        raise InputError(message)


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = Parser(prog="ci/cache_chaos.sh", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=str(REPO / "build-metrics" / "cache_chaos"), help="summary.json and logs/ (default build-metrics/cache_chaos)")
    parser.add_argument("--target", action="append", dest="targets", help="a target label (repeatable; default: DEFAULT_TARGETS in ci/cache_chaos.py)")
    parser.add_argument("--case", action="append", dest="cases", choices=CASES, help="run only these cases (repeatable)")
    parser.add_argument("--kill-after-puts", type=int, default=1, help="CAS writes to wait for before killing the cache (default 1)")
    parser.add_argument("--build-timeout", type=int, default=600, help="seconds per build (default 600)")
    args = parser.parse_args(argv)
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {out}: exists and is not a folder")
    for target in args.targets or []:
        if not re.fullmatch(r"(@[\w.-]*)?//[\w./+-]*(:[\w./+=,@~-]+)?", target):
            raise InputError(f"--target {target!r}: not a target label (//package:name)")
    if args.kill_after_puts < 1:
        raise InputError("--kill-after-puts must be at least 1")
    if args.build_timeout < 30:
        raise InputError("--build-timeout must be at least 30 seconds")
    if shutil.which(os.environ.get("BAZEL", "bazel")) is None:
        raise InputError(f"no {os.environ.get('BAZEL', 'bazel')} on PATH (set BAZEL)")
    args.out = out.resolve()
    args.targets = args.targets or list(DEFAULT_TARGETS)
    args.cases = [case for case in CASES if case in (args.cases or CASES)]
    return args


def raise_interrupted(signum, _frame):
    raise Interrupted(signal.Signals(signum).name)


def timed(function, *args) -> Case:
    t0 = time.monotonic()
    case = function(*args)
    case.seconds = round(time.monotonic() - t0, 1)
    return case


def run(args: argparse.Namespace) -> int:
    t_start = time.monotonic()
    args.out.mkdir(parents=True, exist_ok=True)
    logs = args.out / "logs"
    shutil.rmtree(logs, ignore_errors=True)
    logs.mkdir()
    scratch = Path(tempfile.mkdtemp(prefix="chimera-cache-chaos.", dir="/var/tmp"))
    bazel = Bazel(os.environ.get("BAZEL", "bazel"), scratch / "output_base", args.targets, logs, args.build_timeout)
    buildbarn = Buildbarn(scratch / "buildbarn")
    cases: list[Case] = []
    error = None
    leftovers: list[str] = []
    bazel_release = ""
    reference_seconds = None
    try:
        log(f"targets {' '.join(args.targets)}; Buildbarn on {buildbarn.url} (data {buildbarn.data})")
        reference = bazel.build("reference")
        if reference.returncode != 0 or not reference.outputs or not reference.tests_passed:
            raise RuntimeError(f"the clean local build failed (exit {reference.returncode}; log {logs}/reference.log)")
        reference_seconds = reference.seconds
        bazel_release = bazel.version()
        log(f"clean local build: {len(reference.outputs)} final outputs, {reference.executed()} spawns, {reference.seconds} s ({bazel_release})")
        if "killed" in args.cases:
            cases.append(timed(case_killed, bazel, buildbarn, reference, args.kill_after_puts))
        if "corrupt" in args.cases or "evicted" in args.cases:
            fill(bazel, buildbarn, reference)
        if "corrupt" in args.cases:
            cases.append(timed(case_corrupt, bazel, buildbarn, reference))
        if "evicted" in args.cases:
            cases.append(timed(case_evicted, bazel, buildbarn, reference))
    except (RuntimeError, subprocess.CalledProcessError, OSError, Interrupted) as failure:
        error = f"{type(failure).__name__}: {failure}"
        log(f"aborted: {error}")
    finally:
        # A second SIGTERM must not cut the clean-up short.
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        bazel.interrupt()
        server = bazel.server_pid()
        bazel.shutdown()
        storage = buildbarn.pid()
        buildbarn.stop()
        time.sleep(0.5)
        for what, pid in (("bazel server", server), ("bb_storage", storage)):
            if pid is not None and process_alive(pid):
                leftovers.append(f"{what} {pid}")
        subprocess.run(["chmod", "-R", "u+w", str(scratch)], capture_output=True)
        shutil.rmtree(scratch, ignore_errors=True)
    log("processes left behind: " + (", ".join(leftovers) if leftovers else "none (the bazel server and bb_storage are stopped)"))

    passed = error is None and not leftovers and len(cases) == len(args.cases) and all(case.passed for case in cases)
    summary = {
        "passed": passed,
        "cases": [
            {"name": case.name, "outcome": "PASS" if case.passed else "FAIL", "seconds": case.seconds, "failures": case.failures, "checks": case.checks}
            for case in cases
        ],
        "error": error,
        "processes_left": leftovers,
        "targets": args.targets,
        "reference_build_seconds": reference_seconds,
        "bazel_version": bazel_release,
        "buildbarn": "bb_storage (ci/buildbarn.sh start cache), local block-device backend (ci/buildbarn/config/storage.jsonnet), 1 GiB CAS",
        "seconds": round(time.monotonic() - t_start, 1),
        "machine": {"host": platform.node(), "cpus": os.cpu_count(), "load_average_at_end": [round(x, 2) for x in os.getloadavg()]},
    }
    (args.out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    log(f"{sum(case.passed for case in cases)}/{len(args.cases)} cases passed in {summary['seconds']} s; summary {args.out / 'summary.json'}")
    return 0 if passed else 1


def main(argv: list[str] | None = None) -> int:
    try:
        args = parse_args(sys.argv[1:] if argv is None else argv)
    except InputError as bad:
        print(f"ci/cache_chaos.sh: {bad}", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, raise_interrupted)
    signal.signal(signal.SIGINT, raise_interrupted)
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
