"""`python -m bench`: run every measurement of issue 7 and print the tables.

One run, in this order, each server started fresh on loopback with generated certs:
1. ceiling: a trivial app (parse, constant allow) under the webhook's gunicorn settings;
2. webhook, bundled policies (1 TaskPolicy file): small pods and a big pod, at saturation and
   at a fixed rate, and each pod create as two calls (/mutate then /validate);
3. webhook, N TaskPolicy files (default 1,000): the same;
4. single-call mode: /mutate-validate mutates and judges, one call per pod create;
5. the pure core per pod, in-process (timeit).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

from bench import apiserver, core
from bench.load import Phase, PhaseResult, Target, open_connection, round_trip, run_phase
from bench.policies import BUNDLED, policy_folder
from bench.report import (
    LatencySummary,
    Row,
    latency_table,
    load_average,
    machine_lines,
    ms,
    table,
)
from bench.reviews import (
    BIG_CONTAINERS,
    BIG_ENV_VARS,
    CREATE_ONE_CALL,
    CREATE_TWO_CALLS,
    MUTATE,
    VALIDATE,
    Request,
    big_pods,
    build_requests,
    env_var_count,
    pod_creates,
    single_calls,
    small_pods,
)
from bench.servers import Server, ServerSpec, memory_kib, running

SMALL, BIG = "small mix", f"big ({BIG_CONTAINERS} containers, {BIG_ENV_VARS} env)"
TARGET_RATIO, TARGET_P99_MS, TARGET_SCALE_P99, TARGET_RSS_MB, TARGET_READY_S = (
    0.8, 3.0, 0.10, 60.0, 1.5)


@dataclass(frozen=True)
class Settings:
    duration: float
    warmup: float
    connections: int
    processes: int
    rate: float  # reviews per second per hook (= pod creates per second)
    big_rate: float  # the same for the big pod, which costs several times more
    workers: int
    threads: int
    policies: int
    variants: int
    core_budget: float
    pin: str
    key_type: str
    log_level: str
    quick: bool


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Benchmark the webhook as kube-apiserver calls it (gunicorn, TLS, "
                    "kept-alive HTTP/1.1) against a trivial ceiling app; print Markdown tables.")
    parser.add_argument("--duration", type=float, default=8.0,
                        help="seconds per measured phase (default 8)")
    parser.add_argument("--warmup", type=float, default=1.0,
                        help="seconds of unrecorded load after each server start (default 1)")
    parser.add_argument("--connections", type=int, default=4,
                        help="kept-alive connections per load process (default 4)")
    parser.add_argument("--processes", type=int, default=2,
                        help="load generator processes (default 2)")
    parser.add_argument("--rate", type=float, default=200.0,
                        help="fixed-rate phase: reviews/s per hook, i.e. pod creates/s "
                             "(default 200)")
    parser.add_argument("--big-rate", type=float, default=50.0,
                        help="fixed-rate phase for the big pod, reviews/s per hook (default 50)")
    parser.add_argument("--workers", type=int, default=None,
                        help="gunicorn workers (default: the server's own default)")
    parser.add_argument("--threads", type=int, default=None,
                        help="gunicorn threads per worker (default: the server's own default)")
    parser.add_argument("--policies", type=int, default=1000,
                        help="TaskPolicy files in the scale run (default 1000)")
    parser.add_argument("--pin", choices=("split", "none"), default="split",
                        help="split: load processes on CPU 0, servers on the others (when "
                             "there are ≥2); none: let the kernel schedule (default split)")
    parser.add_argument("--key-type", choices=("ecdsa", "rsa"), default="ecdsa",
                        help="serving certificate key type (default ecdsa, as `certs` makes)")
    parser.add_argument("--log-level", default="info",
                        help="server log level; info writes the decision log as in production")
    parser.add_argument("--section", choices=("all", "server", "apiserver"), default="all",
                        help="server: the server alone; apiserver: pod creates through a real "
                             "kube-apiserver (needs KUBEBUILDER_ASSETS or ../shared/k8s/bin); "
                             "all: both (default)")
    parser.add_argument("--quick", action="store_true",
                        help="a seconds-long smoke run: tiny phases, 20 policies; the figures "
                             "mean nothing")
    return parser


def settings_from(args: argparse.Namespace) -> Settings:
    from webhook.serving.server import ServeOptions

    workers = args.workers or ServeOptions.workers
    threads = args.threads or ServeOptions.threads
    if args.quick:
        return Settings(duration=0.3, warmup=0.1, connections=2, processes=1, rate=50,
                        big_rate=20,
                        workers=workers, threads=threads, policies=20, variants=1,
                        core_budget=0.01, pin=args.pin, key_type=args.key_type,
                        log_level=args.log_level, quick=True)
    return Settings(duration=args.duration, warmup=args.warmup, connections=args.connections,
                    processes=args.processes, rate=args.rate, big_rate=args.big_rate,
                    workers=workers, threads=threads,
                    policies=args.policies, variants=8, core_budget=0.5, pin=args.pin,
                    key_type=args.key_type, log_level=args.log_level, quick=False)


def cpu_split(pin: str) -> tuple[tuple[int, ...] | None, tuple[int, ...] | None]:
    """(load CPUs, server CPUs)."""
    cpus = sorted(os.sched_getaffinity(0))
    if pin == "none" or len(cpus) < 2:
        return None, None
    return (cpus[0],), tuple(cpus[1:])


class Bench:
    def __init__(self, settings: Settings, workdir: Path) -> None:
        self.settings = settings
        self.workdir = workdir
        self.load_cpus, self.server_cpus = cpu_split(settings.pin)
        self.rows: list[Row] = []
        self.footprints: list[tuple[str, float, list[tuple[int, int]], tuple[int, int]]] = []
        self.ratios: list[float] = []

    def spec(self, kind: str, policies: Path) -> ServerSpec:
        s = self.settings
        return ServerSpec(kind, policies, self.workdir / "certs", s.workers, s.threads,
                          s.log_level, self.server_cpus)

    def phase(self, rate: float | None) -> Phase:
        s = self.settings
        return Phase(duration=s.duration, connections=s.connections, processes=s.processes,
                     rate=rate, cpus=self.load_cpus)

    def warm(self, server: Server, requests: list[Request]) -> None:
        s = self.settings
        run_phase(server.target, replace(self.phase(None), duration=s.warmup), requests)

    def measure(self, server: Server, name: str, pods: str, requests: list[Request],
                rate: float | None, calls_per_item: int = 1) -> Row:
        """One phase; `rate` in items per second (None: saturation)."""
        before = server.cpu_seconds()
        result: PhaseResult = run_phase(server.target, self.phase(rate), requests)
        server_cpu = server.cpu_seconds() - before
        reviews = result.completed * calls_per_item
        elapsed = result.elapsed or math.nan
        row = Row(server=name, pods=pods,
                  mode="saturation" if rate is None else f"{rate:g}/s",
                  throughput=reviews / elapsed,
                  latency={k: LatencySummary.of(v) for k, v in result.latencies.items()},
                  server_cpu_ms=server_cpu * 1000 / reviews if reviews else math.nan,
                  load_busy=result.load_cpu_seconds / (elapsed * self.settings.processes),
                  errors=result.errors + result.denied,
                  note=result.error_text)
        self.rows.append(row)
        if row.errors:
            print(f"  ! {name} {pods} {row.mode}: {row.errors} errors, first: {row.note}",
                  file=sys.stderr)
        return row

    def footprint(self, name: str, server: Server) -> None:
        workers = [memory_kib(pid) for pid in server.worker_pids()]
        self.footprints.append((name, server.ready_seconds, workers,
                                memory_kib(server.process.pid)))


def check_answers(target: Target, requests: list[Request], expect_patch: bool) -> list[str]:
    """Every distinct request once: a 200 allow, with a patch on /mutate when expected."""
    problems = []
    sock = open_connection(target)
    try:
        for request in requests:
            for data, hook in ((request.data, request.hook), (request.follow_up, VALIDATE)):
                if not data:
                    continue
                status, body = round_trip(sock, data)
                if status != 200:
                    problems.append(f"{request.pod} {hook}: HTTP {status} {body[:200]!r}")
                    continue
                answer = json.loads(body)["response"]
                if answer.get("allowed") is not True:
                    problems.append(f"{request.pod} {hook}: denied: {answer.get('status')}")
                if expect_patch and hook == MUTATE and answer.get("patchType") != "JSONPatch":
                    problems.append(f"{request.pod} {hook}: no patch")
    finally:
        sock.close()
    return problems


def run(settings: Settings) -> int:
    from webhook.cluster.certs import write_certs
    from webhook.policy.load import load_policy_dir

    started = time.perf_counter()
    bundled = load_policy_dir(BUNDLED).policy_set
    if bundled is None:
        print("error: the bundled policies do not load", file=sys.stderr)
        return 1
    small = build_requests(small_pods(), bundled, settings.variants)
    big = build_requests(big_pods(), bundled, max(1, settings.variants // 2))
    creates = pod_creates(small)
    singles = single_calls(small)
    rate = settings.rate
    print("# airflow-pod-webhook bench\n")
    for line in machine_lines():
        print(line)
    print(f"load average at start: {load_average()} (figures are only clean when nothing "
          "else runs on the machine)")
    with tempfile.TemporaryDirectory(prefix="airflow-pod-webhook-bench-") as tmp:
        workdir = Path(tmp)
        write_certs(workdir / "certs", "airflow-pod-webhook", "airflow-pod-webhook",
                    key_type=settings.key_type)
        bench = Bench(settings, workdir)
        print(f"gunicorn gthread: {settings.workers} workers x {settings.threads} threads; "
              f"load: {settings.processes} processes x {settings.connections} kept-alive "
              f"TLS connections; pinning: load on CPUs {bench.load_cpus or 'any'}, servers on "
              f"{bench.server_cpus or 'any'}; {settings.duration:g} s per phase")
        print(f"pods: small mix = {len(small_pods())} Airflow 2/3 executor and KPO pods; "
              f"big = executor pod with {BIG_CONTAINERS} containers, "
              f"{env_var_count(big_pods()[0][1])} env vars; /validate gets the mutated pod")
        one = policy_folder(workdir / "policies-1", 1)
        many = policy_folder(workdir / f"policies-{settings.policies}", settings.policies)
        many_name = f"webhook, {settings.policies} policies"

        with running(bench.spec("ceiling", one), workdir) as server:
            print(f"... ceiling ready in {server.ready_seconds:.2f} s", file=sys.stderr)
            _require(check_answers(server.target, small, expect_patch=False))
            bench.warm(server, small)
            bench.measure(server, "ceiling", SMALL, small, None)
            bench.measure(server, "ceiling", SMALL, small, 2 * rate)
            bench.footprint("ceiling", server)

        for name, folder in (("webhook, 1 policy", one), (many_name, many)):
            with running(bench.spec("webhook", folder), workdir) as server:
                print(f"... {name} ready in {server.ready_seconds:.2f} s", file=sys.stderr)
                _require(check_answers(server.target, small + big, expect_patch=True))
                bench.warm(server, small)
                bench.measure(server, name, SMALL, small, None)
                bench.measure(server, name, SMALL, small, 2 * rate)
                bench.measure(server, name, BIG, big, None)
                bench.measure(server, name, BIG, big, 2 * settings.big_rate)
                if folder is one:
                    bench.measure(server, name, SMALL, creates, None, calls_per_item=2)
                    bench.measure(server, name, SMALL, creates, rate, calls_per_item=2)
                bench.footprint(name, server)

        with running(bench.spec("webhook", one), workdir) as server:
            print(f"... single-call ready in {server.ready_seconds:.2f} s", file=sys.stderr)
            _require(check_answers(server.target, singles, expect_patch=True))
            bench.warm(server, singles)
            bench.measure(server, "single-call, 1 policy", SMALL, singles, None)
            bench.measure(server, "single-call, 1 policy", SMALL, singles, rate)
            bench.footprint("single-call", server)

        # The machine's speed drifts (shared hosts): ceiling and webhook run side by side and
        # take turns, so each round's ratio compares the two under the same conditions.
        with running(bench.spec("ceiling", one), workdir) as ceiling, \
                running(bench.spec("webhook", one), workdir) as webhook:
            print("... interleaved ceiling/webhook rounds", file=sys.stderr)
            bench.warm(ceiling, small)
            bench.warm(webhook, small)
            bench.ratios = interleaved_ratios(bench, ceiling, webhook, small, RATIO_ROUNDS)

    print("... core micro-benchmark", file=sys.stderr)
    figures = core.run_core(small_pods()[1:2] + small_pods()[5:6] + big_pods(), bundled,
                            settings.core_budget)
    print_report(bench, figures, settings, many_name)
    print(f"\n(bench took {time.perf_counter() - started:.0f} s; load average at the end: "
          f"{load_average()})")
    return 0


RATIO_ROUNDS = 6


def interleaved_ratios(bench: Bench, ceiling: Server, webhook: Server,
                       requests: list[Request], rounds: int) -> list[float]:
    """Webhook/ceiling saturation throughput, one short phase each per round, order alternating."""
    phase = replace(bench.phase(None), duration=max(bench.settings.duration / 2, 0.2))
    ratios = []
    for i in range(rounds):
        throughput = {}
        for server in (ceiling, webhook) if i % 2 == 0 else (webhook, ceiling):
            result = run_phase(server.target, phase, requests)
            throughput[server is webhook] = result.completed / (result.elapsed or math.nan)
        ratios.append(throughput[True] / throughput[False])
    return ratios


def _require(problems: list[str]) -> None:
    if problems:
        raise SystemExit("the server answered wrongly, figures would be meaningless:\n  "
                         + "\n  ".join(problems[:10]))


def _find(rows: list[Row], server: str, pods: str, mode: str) -> Row | None:
    return next((r for r in rows if r.server == server and r.pods == pods and r.mode == mode),
                None)


def print_report(bench: Bench, figures: list[core.CoreFigure], settings: Settings,
                 many_name: str) -> None:
    rows = bench.rows
    fixed = f"{2 * settings.rate:g}/s"
    print("\n## Throughput and latency (latency: due time to last byte; ms)\n")
    print(latency_table(rows))

    print("\n## Footprint\n")
    foot_rows = []
    for name, ready, workers, master in bench.footprints:
        foot_rows.append([name, f"{ready:.2f}",
                          " / ".join(f"{rss / 1024:.1f}" for rss, _ in workers),
                          " / ".join(f"{pss / 1024:.1f}" for _, pss in workers),
                          f"{master[0] / 1024:.1f}"])
    print(table(["server", "start to ready s", "RSS per worker MB", "PSS per worker MB",
                 "master RSS MB"], foot_rows))

    print("\n## Pure core, per call (µs, in-process, best of 5)\n")
    pods = list(dict.fromkeys(f.pod for f in figures))
    steps = list(dict.fromkeys(f.step for f in figures))
    by = {(f.pod, f.step): f.microseconds for f in figures}
    print(table(["step", *pods], [[step, *(f"{by[(p, step)]:.0f}" if (p, step) in by else "-"
                                          for p in pods)] for step in steps]))

    print("\n## Summary against the issue's targets\n")
    ceiling = _find(rows, "ceiling", SMALL, "saturation")
    hook1 = _find(rows, "webhook, 1 policy", SMALL, "saturation")
    hook1_fixed = _find(rows, "webhook, 1 policy", SMALL, fixed)
    many_fixed = _find(rows, many_name, SMALL, fixed)
    many_sat = _find(rows, many_name, SMALL, "saturation")
    big_sat = _find(rows, "webhook, 1 policy", BIG, "saturation")
    big_fixed = _find(rows, "webhook, 1 policy", BIG, f"{2 * settings.big_rate:g}/s")
    lines = []
    if bench.ratios:
        ratio = statistics.median(bench.ratios)
        spread = f"{min(bench.ratios):.2f}-{max(bench.ratios):.2f}"
        lines.append(_target(f"webhook throughput = {ratio:.2f} x ceiling (median of "
                             f"{len(bench.ratios)} interleaved rounds, range {spread})",
                             ratio >= TARGET_RATIO, f"≥ {TARGET_RATIO}"))
    if ceiling and hook1 and ceiling.throughput:
        ratio = hook1.throughput / ceiling.throughput
        lines.append(f"- separate phases: webhook {hook1.throughput:.0f}/s, ceiling "
                     f"{ceiling.throughput:.0f}/s ({ratio:.2f} x; taken minutes apart)")
    if hook1_fixed:
        for hook in (MUTATE, VALIDATE):
            s = hook1_fixed.latency.get(hook)
            if s:
                lines.append(_target(f"p99 {hook} at {settings.rate:g}/s per hook: "
                                     f"{ms(s.p99)} ms", s.p99 * 1000 <= TARGET_P99_MS,
                                     f"≤ {TARGET_P99_MS} ms"))
    if hook1_fixed and many_fixed:
        for hook in (MUTATE, VALIDATE):
            a, b = hook1_fixed.latency.get(hook), many_fixed.latency.get(hook)
            if a and b and a.p99 > 0:
                growth = b.p99 / a.p99 - 1
                lines.append(_target(f"{settings.policies} vs 1 policy files, p99 {hook}: "
                                     f"{ms(a.p99)} -> {ms(b.p99)} ms ({growth:+.0%})",
                                     growth <= TARGET_SCALE_P99, f"≤ +{TARGET_SCALE_P99:.0%}"))
    if hook1 and many_sat and hook1.throughput:
        lines.append(f"- {settings.policies} vs 1 policy files, throughput: "
                     f"{hook1.throughput:.0f} -> {many_sat.throughput:.0f}/s "
                     f"({many_sat.throughput / hook1.throughput - 1:+.0%})")
    if hook1 and big_sat and hook1.server_cpu_ms:
        lines.append(f"- big vs small pod: server CPU {hook1.server_cpu_ms:.2f} -> "
                     f"{big_sat.server_cpu_ms:.2f} ms/review "
                     f"(x{big_sat.server_cpu_ms / hook1.server_cpu_ms:.1f}), throughput "
                     f"{hook1.throughput:.0f} -> {big_sat.throughput:.0f}/s")
    if hook1_fixed and big_fixed:
        for hook in (MUTATE, VALIDATE):
            a, b = hook1_fixed.latency.get(hook), big_fixed.latency.get(hook)
            if a and b:
                lines.append(f"- big vs small pod, {hook} p50/p99: {ms(a.p50)}/{ms(a.p99)} ms at "
                             f"{settings.rate:g}/s -> {ms(b.p50)}/{ms(b.p99)} ms at "
                             f"{settings.big_rate:g}/s")
    for name, ready, workers, _ in bench.footprints:
        if name.startswith("webhook") and workers:
            worst = max(rss for rss, _ in workers) / 1024
            lines.append(_target(f"{name}: RSS per worker ≤ {worst:.1f} MB",
                                 worst <= TARGET_RSS_MB, f"≤ {TARGET_RSS_MB:.0f} MB"))
            lines.append(_target(f"{name}: ready in {ready:.2f} s", ready <= TARGET_READY_S,
                                 f"≤ {TARGET_READY_S} s"))
    two_sat = _find(rows, "webhook, 1 policy", SMALL, "saturation")
    creates_sat = next((r for r in rows if CREATE_TWO_CALLS in r.latency
                        and r.mode == "saturation"), None)
    creates_fixed = next((r for r in rows if CREATE_TWO_CALLS in r.latency
                          and r.mode == f"{settings.rate:g}/s"), None)
    single_sat = _find(rows, "single-call, 1 policy", SMALL, "saturation")
    single_fixed = _find(rows, "single-call, 1 policy", SMALL, f"{settings.rate:g}/s")
    if two_sat and single_sat and creates_sat and creates_sat.throughput:
        lines.append(f"- single-call mode, pod creates/s at saturation: two calls "
                     f"{creates_sat.throughput / 2:.0f} -> one call "
                     f"{single_sat.throughput:.0f} "
                     f"({single_sat.throughput / (creates_sat.throughput / 2) - 1:+.0%})")
    if creates_fixed and single_fixed:
        a = creates_fixed.latency[CREATE_TWO_CALLS]
        b = single_fixed.latency[CREATE_ONE_CALL]
        lines.append(f"- single-call mode, webhook time per pod create at "
                     f"{settings.rate:g}/s, p50/p99: two calls {ms(a.p50)}/{ms(a.p99)} -> "
                     f"one call {ms(b.p50)}/{ms(b.p99)} ms")
    print("\n".join(lines))
    if settings.quick:
        print("\n(--quick: phases are a fraction of a second; these figures mean nothing)")


def _target(text: str, met: bool, goal: str) -> str:
    return f"- {text} (target {goal}): {'met' if met else 'NOT met'}"


def run_apiserver_section(args: argparse.Namespace) -> int:
    settings = (apiserver.ApiServerSettings.quick() if args.quick
                else apiserver.ApiServerSettings())
    settings = replace(settings, workers=args.workers, threads=args.threads,
                       log_level=args.log_level)
    with tempfile.TemporaryDirectory(prefix="airflow-pod-webhook-bench-api-") as tmp:
        return apiserver.run(settings, Path(tmp))


def main(argv: list[str] | None = None) -> int:
    # SIGTERM unwinds like Ctrl-C, so every server started is stopped on the way out.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    args = build_parser().parse_args(argv)
    status = 0
    if args.section in ("all", "server"):
        status = run(settings_from(args))
    else:
        print("# airflow-pod-webhook bench\n")
        print("\n".join(machine_lines()))
    if args.section in ("all", "apiserver"):
        status = run_apiserver_section(args) or status
    return status
