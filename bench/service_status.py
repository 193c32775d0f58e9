"""Benchmark: the integrations service's status call under load (issue 18).

A registry of 1,000 connected companies (embedded default: SQLite registry in a fresh data folder, a
temporary DAGSTER_HOME), spread over QuickBooks Time, Aspire and BusyBusy, stored through the
registry's admin path without the vendor check (``prepare`` + ``save``, as ``connect`` does after
the vendor accepted), with sync state and history so that the statuses vary: a third connected
(initial sync and a refresh succeeded, checked 30 minutes ago), a third pending (initial sync under
way) and a third failed (the last check refused the credentials). No vendor is called.

The service runs as ``protiv serve`` starts it (the console script, uvicorn, its access log, its
status watcher), in its own process. The clients run in another process (aiohttp, asyncio): each of
``--clients`` clients calls ``GET /companies/{id}/integration`` for a random company, with a valid
token of that company's admin or of an operator (half each, signed beforehand with a development
key as the app would sign them), and reads the answer. Two phases of ``--duration`` seconds each,
after a warm-up:

- ``polling``: each client asks once per ``--poll`` seconds (an Integration page open: the service's own
  page polls every 1.5 s while a sync is pending or under way; 200 clients offer 133 calls/s). The
  issue's target, p95 < 50 ms, is read here.
- ``saturated``: each client asks again as soon as it has its answer (closed loop): the service's
  throughput ceiling; latency is then the queue (clients / throughput, Little's law), not the call.

Printed per phase: requests, errors, throughput, latency p50/p95/p99/max (from before the request is
sent to the whole body read), the statuses answered, the CPU the service and the clients used. On
2 cores the client process competes with the service: ``--pin`` puts the service on CPU 0 and the
clients on CPU 1. Exit status 1 when any call fails or the statuses do not vary.

    .venv/bin/python bench/service_status.py [--companies 1000] [--clients 200] [--duration 20] [--poll 1.5] [--pin]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from machine import describe  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
PROVIDERS = ("quickbooks_time", "aspire", "busybusy")
KINDS = ("connected", "pending", "failed")
WARM_UP_SECONDS = 3.0
TICKS = os.sysconf("SC_CLK_TCK")


def company_ids(companies: int) -> list[str]:
    return [f"co-{n:04d}" for n in range(companies)]


def credentials(provider: str, number: int) -> dict[str, str]:
    if provider == "quickbooks_time":
        return {"access_token": f"S.bench-token-{number:04d}"}
    if provider == "aspire":
        return {"client_id": f"bench-client-{number:04d}", "secret": f"bench-secret-{number:04d}"}
    return {"username": f"bench-{number:04d}@example.com", "password": f"bench-password-{number:04d}"}


def seed(companies: int, now: datetime) -> tuple[dict[str, str], float]:
    """Connections and sync state for ``companies`` companies; returns each one's intended status
    and the seconds seeding took."""
    import sqlalchemy as sa

    from protiv_dagster.connections.registry import ConnectionRegistry
    from protiv_dagster.partitions import week_keys
    from protiv_dagster.sync.state import SyncStateStore

    started = time.perf_counter()
    registry, store = ConnectionRegistry(), SyncStateStore()
    for engine in (registry.engine, store.engine):  # seeding only: no fsync per commit (the service's own is untouched)
        engine.dispose()
        sa.event.listen(engine, "connect", lambda dbapi, _: dbapi.execute("PRAGMA synchronous = OFF"))
    pull_date = now.date() - timedelta(days=14)
    weeks = week_keys(pull_date, now.date())
    intended: dict[str, str] = {}
    quiet: list[str] = []
    for number, company_id in enumerate(company_ids(companies)):
        provider = PROVIDERS[number % len(PROVIDERS)]
        candidate = registry.prepare(
            company_id,
            provider,
            "http://127.0.0.1:9/api/v1",  # never called: the status path asks no vendor
            credentials(provider, number),
            attendance_pull_date=pull_date,
            settings={"timezone": "America/Denver"},
        )
        connection = registry.save(candidate)
        kind = KINDS[(number // len(PROVIDERS)) % len(KINDS)]  # every vendor gets every status
        intended[company_id] = kind
        if kind == "pending":  # connected a minute ago, its initial sync under way
            store.open_batch(
                company_id, "initial_sync", None, weeks, True, now - timedelta(minutes=1), connection.connected_at
            )
            continue
        initial = store.open_batch(
            company_id, "initial_sync", None, weeks, True, now - timedelta(hours=5), connection.connected_at
        )
        store.finish_batch(initial.batch_id, succeeded=True, at=now - timedelta(hours=5) + timedelta(minutes=2))
        refresh = store.open_batch(
            company_id, "refresh", f"cursor-{number}", weeks[-1:], False, now - timedelta(hours=3)
        )
        store.finish_batch(refresh.batch_id, succeeded=True, at=now - timedelta(hours=3) + timedelta(minutes=1))
        if kind == "connected":
            quiet.append(company_id)
        else:  # checked after the connection was stored (an older failure would read as reconnected since)
            store.record_check(
                company_id,
                datetime.now(UTC),
                error="QuickBooks Time answered HTTP 401: the access token was rejected (reconnect the integration)",
            )
    store.record_quiet_checks(quiet, now - timedelta(minutes=30))
    registry.engine.dispose()
    store.engine.dispose()
    return intended, time.perf_counter() - started


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_service(folder: Path, pin: bool = False) -> tuple[subprocess.Popen, str]:
    """``protiv serve`` on a free loopback port, in its own process, with this process's environment
    (the data folder, DAGSTER_HOME, keys); its output goes to ``folder/service.log``. Returns once it
    answers /health."""
    import requests

    port = free_port()
    log_path = folder / "service.log"
    command = [str(ROOT / ".venv" / "bin" / "protiv"), "serve", "--port", str(port)]
    if pin:
        command = ["taskset", "-c", "0", *command]
    url = f"http://127.0.0.1:{port}"
    started = time.perf_counter()
    with log_path.open("w") as log:
        server = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
    while True:
        try:
            if requests.get(f"{url}/health", timeout=1).ok:
                break
        except requests.RequestException:
            pass
        if server.poll() is not None or time.perf_counter() - started > 120:
            stop_service(server)
            print(log_path.read_text()[-3000:])
            raise SystemExit("the service did not start")
        time.sleep(0.1)
    print(
        f"service: `protiv serve --port {port}` (pid {server.pid}), answering /health "
        f"{time.perf_counter() - started:.1f} s after its start" + ("; pinned to CPU 0" if pin else "")
    )
    return server, url


def stop_service(server: subprocess.Popen) -> None:
    """SIGTERM, as docker stops it (a sync under way gets its 30 s), then SIGKILL."""
    server.terminate()
    try:
        server.wait(timeout=40)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()


def process_cpu(pid: int) -> float:
    """User + system CPU seconds of a process (and its waited-for children) so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(x) for x in fields[11:15]) / TICKS


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(share * len(ordered)) - 1))]


# -- the clients (their own process) ----------------------------------------------------------------------
def run_clients(conn, url: str, tokens: dict, clients: int, duration: float, poll: float, cpu: int | None) -> None:
    """Child process: ``clients`` concurrent clients for a warm-up and ``duration`` seconds; sends back
    the latencies and answers of the measured window."""
    import asyncio

    import aiohttp

    if cpu is not None:
        os.sched_setaffinity(0, {cpu})
    admins, operators = tokens["admins"], tokens["operators"]
    ids = list(admins)

    async def main() -> dict:
        latencies: list[float] = []
        codes: Counter = Counter()
        answered: Counter = Counter()
        errors: Counter = Counter()
        began = time.perf_counter()
        measure_from, measure_to = began + WARM_UP_SECONDS, began + WARM_UP_SECONDS + duration
        connector = aiohttp.TCPConnector(limit=clients, limit_per_host=clients, force_close=False)
        timeout = aiohttp.ClientTimeout(total=60)
        async with aiohttp.ClientSession(url, connector=connector, timeout=timeout) as session:

            async def client(number: int) -> None:
                rng = random.Random(number)
                if poll:  # spread the pages' polls over the interval
                    await asyncio.sleep(rng.random() * poll)
                while (sent := time.perf_counter()) < measure_to:
                    company_id = rng.choice(ids)
                    token = admins[company_id] if rng.random() < 0.5 else rng.choice(operators)
                    try:
                        async with session.get(
                            f"/companies/{company_id}/integration", headers={"Authorization": f"Bearer {token}"}
                        ) as answer:
                            body = await answer.read()
                            status = answer.status
                    except (TimeoutError, aiohttp.ClientError) as exc:
                        body, status = b"", None
                        error = type(exc).__name__
                    done = time.perf_counter()
                    if sent >= measure_from:
                        latencies.append(done - sent)
                        codes[status] += 1
                        if status == 200:
                            answered[json.loads(body)["status"]] += 1
                        elif status is None:
                            errors[error] += 1
                        else:
                            errors[f"HTTP {status}: {body[:120].decode(errors='replace')}"] += 1
                    if poll:
                        await asyncio.sleep(max(0.0, sent + poll - time.perf_counter()))

            await asyncio.gather(*(client(n) for n in range(clients)))
        return {"latencies": latencies, "codes": dict(codes), "answered": dict(answered), "errors": dict(errors)}

    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    cpu_before = time.process_time()
    result = asyncio.run(main())
    result["client_cpu"] = time.process_time() - cpu_before
    conn.send(result)


def phase(name: str, url: str, tokens: dict, args, server_pid: int) -> dict:
    spawn = mp.get_context("spawn")
    parent, child = spawn.Pipe()
    poll = args.poll if name == "polling" else 0.0
    process = spawn.Process(
        target=run_clients, args=(child, url, tokens, args.clients, args.duration, poll, 1 if args.pin else None)
    )
    cpu_before = process_cpu(server_pid)
    process.start()
    time.sleep(WARM_UP_SECONDS)
    cpu_measured = process_cpu(server_pid)
    load_before = os.getloadavg()[0]
    result = parent.recv()
    cpu_after = process_cpu(server_pid)
    process.join(timeout=30)
    result.update(
        phase=name,
        poll=poll,
        server_cpu=cpu_after - cpu_measured,
        server_cpu_all=cpu_after - cpu_before,
        load=(load_before, os.getloadavg()[0]),
    )
    return result


def report(result: dict, args, intended: dict[str, str]) -> bool:
    latencies = [x * 1000 for x in result["latencies"]]
    n = len(latencies)
    errors = sum(result["errors"].values())
    offered = f"each client once per {result['poll']:g} s" if result["poll"] else "each client again at once"
    print(f"\n=== {result['phase']}: {args.clients} clients, {offered}, {args.duration:g} s measured ===")
    if not n:
        print("  no request answered")
        return False
    print(
        f"  requests {n:,}, errors {errors}, throughput {n / args.duration:,.0f}/s; latency ms: "
        f"p50 {percentile(latencies, 0.50):.1f}, p95 {percentile(latencies, 0.95):.1f}, "
        f"p99 {percentile(latencies, 0.99):.1f}, max {max(latencies):.1f} (mean {statistics.fmean(latencies):.1f})"
    )
    answered = result["answered"]
    print(
        "  statuses answered: "
        + ", ".join(f"{kind} {answered.get(kind, 0):,}" for kind in (*KINDS, *sorted(set(answered) - set(KINDS))))
        + f" (seeded: {', '.join(f'{k} {v}' for k, v in sorted(Counter(intended.values()).items()))})"
    )
    print(
        f"  CPU: service {result['server_cpu']:.1f} s over {args.duration:g} s "
        f"({100 * result['server_cpu'] / args.duration:.0f} % of one core), clients {result['client_cpu']:.1f} s "
        f"(with the warm-up); load average {result['load'][0]:.1f} -> {result['load'][1]:.1f}"
    )
    for error, count in sorted(result["errors"].items(), key=lambda item: -item[1])[:5]:
        print(f"  error x{count}: {error}")
    return errors == 0 and all(answered.get(kind) for kind in KINDS)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--companies", type=int, default=1000, help="connected companies in the registry")
    parser.add_argument("--clients", type=int, default=200, help="concurrent clients")
    parser.add_argument("--duration", type=float, default=20.0, help="seconds measured per phase (after a warm-up)")
    parser.add_argument(
        "--poll", type=float, default=1.5, help="seconds between a polling client's calls (the page polls every 1.5 s)"
    )
    parser.add_argument("--phases", default="polling,saturated", help="polling, saturated or both")
    parser.add_argument("--pin", action="store_true", help="service on CPU 0, clients on CPU 1")
    parser.add_argument("--keep-log", type=Path, help="copy the service's output (its access log) here")
    args = parser.parse_args()

    from protiv_dagster.connections.registry import generate_secret_key
    from protiv_dagster.integrations.auth import DevelopmentKeys

    print(f"machine: {describe(('fastapi', 'uvicorn', 'sqlalchemy'))}")
    print(
        f"command: service_status.py --companies {args.companies} --clients {args.clients} --duration "
        f"{args.duration:g} --poll {args.poll:g} --phases {args.phases}" + (" --pin" if args.pin else "")
    )
    ok = True
    with tempfile.TemporaryDirectory(prefix="protiv-bench-") as folder:
        (home := Path(folder) / "dagster_home").mkdir()
        (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
        for name in ("PROTIV_WAREHOUSE_URL", "PROTIV_REGISTRY_URL", "PROTIV_WEBHOOK_URL"):  # the embedded default
            os.environ.pop(name, None)
        keys = DevelopmentKeys(Path(folder) / "keys")
        keys.create()
        os.environ.update(
            PROTIV_DATA_DIR=str(Path(folder) / "data"),
            DAGSTER_HOME=str(home),
            PROTIV_SECRET_KEY=generate_secret_key(),
            PROTIV_SERVICE_JWKS=str(keys.jwks_path),
        )
        now = datetime.now(UTC)
        intended, seconds = seed(args.companies, now)
        print(
            f"registry: {args.companies} companies ({', '.join(PROVIDERS)} in turn), seeded in {seconds:.1f} s "
            f"through the registry's admin path, today {date.today()}"
        )
        # Tokens as the app signs them: one per admin, a few operators; 15 minutes, the longest allowed.
        tokens = {
            "admins": {
                company_id: keys.token(f"admin-{company_id}", "admin", company_id, lifetime_seconds=900)
                for company_id in intended
            },
            "operators": [keys.token(f"operator-{n}", "operator", lifetime_seconds=900) for n in range(5)],
        }
        server, url = start_service(Path(folder), pin=args.pin)
        try:
            for name in args.phases.split(","):
                ok &= report(phase(name.strip(), url, tokens, args, server.pid), args, intended)
        finally:
            stop_service(server)
            if args.keep_log:
                args.keep_log.write_text((Path(folder) / "service.log").read_text())
    if not ok:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
