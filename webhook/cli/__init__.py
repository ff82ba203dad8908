"""`airflow-pod-webhook`: serve, make certs and manifests, and run the hooks offline.

The offline commands call the same pure core the server does, so `mutate FILE` and
`POST /mutate` agree on every pod, and they accept what the server accepts (same size and
nesting limits, same messages).

One exit-code contract for every command (README, "Exit codes"):
0 success / allowed / all tests passed; 1 denied / a test failed / lint errors;
2 bad input or usage (unreadable file, bad YAML, missing folder, bad flag).
A closed standard output (`... | head -1`) never changes the code.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

EXIT_OK, EXIT_DENIED, EXIT_BAD_INPUT = 0, 1, 2
DEFAULT_POLICIES = os.environ.get("AIRFLOW_POD_WEBHOOK_POLICIES", "policies")
DEFAULT_CERT_DIR = os.environ.get("AIRFLOW_POD_WEBHOOK_CERT_DIR", "certs")
DEFAULT_SERVICE = "airflow-pod-webhook"
DEFAULT_NAMESPACE = "airflow-pod-webhook"


# Packages only the server extra installs, by the top-level module name an ImportError names.
# The base install (what DAG code in an Airflow image gets) has PyYAML and jsonschema only.
SERVER_ONLY_MODULES = frozenset(
    {"flask", "werkzeug", "gunicorn", "prometheus_client", "orjson", "cryptography"})
CLUSTER_MODULES = frozenset({"kubernetes"})


class InputError(Exception):
    """Input we cannot use; printed as `error: ...`, exit 2 (or `code`)."""

    def __init__(self, message: str, code: int = EXIT_BAD_INPUT) -> None:
        super().__init__(message)
        self.code = code


class ClosedPipeGuard(io.TextIOBase):
    """Standard output that survives its reader going away (`validate ... | head -1`).

    The command keeps running to its real exit code: a denial found after the reader left
    still exits 1. Once the pipe is closed, the rest of the output goes to /dev/null (also what
    Python flushes at exit, which would otherwise fail and exit 120).
    """

    def __init__(self, stream: Any) -> None:
        self.stream = stream
        self.closed_pipe = False

    def write(self, text: str) -> int:
        if not self.closed_pipe:
            try:
                self.stream.write(text)
            except BrokenPipeError:
                self._reader_gone()
        return len(text)

    def flush(self) -> None:
        if not self.closed_pipe:
            try:
                self.stream.flush()
            except BrokenPipeError:
                self._reader_gone()

    def writable(self) -> bool:
        return True

    def _reader_gone(self) -> None:
        self.closed_pipe = True
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, self.stream.fileno())
            os.close(devnull)
        except (OSError, ValueError, io.UnsupportedOperation):
            pass  # not a real file descriptor (tests): nothing will flush it at exit


def missing_extra_hint(exc: ImportError, command: str) -> str | None:
    """The one-line fix when `exc` is a server/cluster dependency absent from a base install."""
    module = (exc.name or "").partition(".")[0]
    if module in SERVER_ONLY_MODULES:
        return (f"`{command}` needs {module}, which only the server extra installs: "
                "pip install 'airflow-pod-webhook[server]'")
    if module in CLUSTER_MODULES:
        return (f"`{command}` needs the kubernetes client: "
                "pip install 'airflow-pod-webhook[cluster]' (or [server], which includes it)")
    return None


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse: a bad flag is 2, --help is 0
        return exc.code if isinstance(exc.code, int) else EXIT_BAD_INPUT
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return EXIT_BAD_INPUT
    stdout, guard = sys.stdout, ClosedPipeGuard(sys.stdout)
    sys.stdout = guard
    try:
        code = args.func(args)
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        code = exc.code
    except ImportError as exc:
        hint = missing_extra_hint(exc, args.func.__name__.removeprefix("cmd_").replace("_", " "))
        if hint is None:
            raise
        print(f"error: {hint}", file=sys.stderr)
        code = EXIT_BAD_INPUT
    finally:
        guard.flush()
        sys.stdout = stdout
    return code


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="airflow-pod-webhook",
        description="Admission webhook for Apache Airflow worker pods.")
    sub = parser.add_subparsers(metavar="COMMAND")

    serve = sub.add_parser("serve", help="serve /mutate and /validate over HTTPS (gunicorn)")
    serve.add_argument("--policies", default=DEFAULT_POLICIES, help="policy folder")
    serve.add_argument("--cert-dir", default=DEFAULT_CERT_DIR,
                       help="tls.crt/tls.key (generated with a dev CA when absent)")
    serve.add_argument("--host", default="0.0.0.0")
    serve.add_argument("--port", type=int, default=8443)
    serve.add_argument("--workers", type=int, default=2)
    serve.add_argument("--threads", type=int, default=8,
                       help="per worker; a TLS handshake holds a thread until its first request")
    serve.add_argument("--service", default=DEFAULT_SERVICE, help="for generated dev certs")
    serve.add_argument("--namespace", default=DEFAULT_NAMESPACE, help="for generated dev certs")
    serve.add_argument("--reload-interval", type=float, default=2.0,
                       help="seconds between policy folder checks")
    serve.add_argument("--log-level", default="info")
    serve.add_argument("--patch-ca-bundle", action="store_true",
                       help="keep the caBundle of our own webhook configurations trusting "
                            "<cert-dir>/ca.crt (in-cluster ServiceAccount, or $KUBECONFIG)")
    serve.add_argument("--ca-poll-interval", type=float, default=5.0,
                       help="seconds between checks of ca.crt with --patch-ca-bundle")
    serve.add_argument("--client-ca", default=None,
                       help="mutual TLS: review calls must present a client certificate "
                            "signed by this CA (see `certs --apiserver-client`); /healthz, "
                            "/readyz and /metrics need none")
    serve.set_defaults(func=cmd_serve)

    certs = sub.add_parser("certs", help="write a CA and a serving cert (renews, keeps the CA)")
    certs.add_argument("--service", default=DEFAULT_SERVICE)
    certs.add_argument("--namespace", default=DEFAULT_NAMESPACE)
    certs.add_argument("--out", default=DEFAULT_CERT_DIR)
    certs.add_argument("--key-type", choices=("ecdsa", "rsa"), default="ecdsa")
    certs.add_argument("--days", type=int, default=365)
    certs.add_argument("--apiserver-client", action="store_true",
                       help="also write a client CA (for serve --client-ca), kube-apiserver's "
                            "client cert, its kubeconfig and the AdmissionConfiguration for "
                            "--admission-control-config-file")
    certs.add_argument("--webhook-host", action="append", default=None,
                       help="with --apiserver-client: a name the API server calls the webhook "
                            "by (default <service>.<namespace>.svc; host:port for a url "
                            "registration on a port other than 443); repeatable")
    certs.add_argument("--kubeconfig-path",
                       default="/etc/kubernetes/airflow-pod-webhook/admission-kubeconfig.yaml",
                       help="with --apiserver-client: where the API server will read the "
                            "kubeconfig (written into the AdmissionConfiguration)")
    certs.set_defaults(func=cmd_certs)

    manifests = sub.add_parser("manifests",
                               help="print the webhook configurations with caBundle filled")
    # No ./certs default: that is where `make serve` writes its development CA, and a caBundle
    # from it would quietly make a cluster trust a dev key.
    manifests.add_argument("--cert-dir", default=os.environ.get("AIRFLOW_POD_WEBHOOK_CERT_DIR"),
                           help="folder with ca.crt, the CA of the serving cert (required)")
    manifests.add_argument("--service", default=DEFAULT_SERVICE)
    manifests.add_argument("--namespace", default=DEFAULT_NAMESPACE)
    manifests.add_argument("--url", help="call the webhook at this https URL instead")
    manifests.add_argument("--single-call", action="store_true",
                           help="one mutating hook that also validates (/mutate-validate, "
                                "failurePolicy Fail); see README for the trade-off")
    manifests.add_argument("--all", action="store_true",
                           help="print `kubectl kustomize deploy/` and the webhook "
                                "configurations: everything to apply")
    manifests.add_argument("--image", metavar="REF",
                           help="with --all: the webhook image, e.g. registry.io/team/"
                                "airflow-pod-webhook:0.1.0 (required unless deploy/ sets one)")
    manifests.add_argument("--self-patch-ca-bundle", action="store_true",
                           help="with --all: add the opt-in component that lets the webhook "
                                "patch its own caBundle (RBAC, API token, egress to the API "
                                "server); see deploy/README.md")
    manifests.add_argument("--deploy-dir", default="deploy")
    manifests.add_argument("--policies", default=DEFAULT_POLICIES,
                           help="policy folder whose Settings name Airflow's accounts (identity): "
                                "every pod they write is sent to the webhook")
    manifests.set_defaults(func=cmd_manifests)

    mutate = sub.add_parser("mutate", help="print the pod as the mutating hook leaves it")
    mutate.add_argument("file", help="a Pod or AdmissionReview, YAML or JSON ('-' for stdin)")
    mutate.add_argument("--policies", default=DEFAULT_POLICIES)
    mutate.add_argument("--patch", action="store_true", help="print the JSON patch instead")
    mutate.add_argument("--namespace", default="", help="when the pod does not say")
    mutate.add_argument("--username", help="who creates the pod (identity checks)")
    mutate.set_defaults(func=cmd_mutate)

    validate = sub.add_parser("validate", help="print each violation; exit 1 if any is denied")
    validate.add_argument("files", nargs="+", metavar="FILE")
    validate.add_argument("--policies", default=DEFAULT_POLICIES)
    validate.add_argument("--level", choices=("baseline", "restricted"),
                          help="only Pod Security at this level (compare with the cluster PSA)")
    validate.add_argument("--version", dest="level_version", default="latest",
                          help="with --level: the Pod Security version, latest or v1.N")
    validate.add_argument("--namespace", default="")
    validate.add_argument("--username", help="who writes the pod: one of Airflow's accounts "
                          "(Settings identity) has every pod judged, whatever its labels")
    validate.add_argument("--old", metavar="FILE",
                          help="judge an update: FILE is the pod before it, each FILE after it")
    validate.add_argument("--subresource", choices=("ephemeralcontainers", "resize"),
                          default="", help="with --old: the update is to this subresource")
    validate.add_argument("--after-mutation", action="store_true",
                          help="judge the pod as the validating hook sees it in a cluster: after "
                               "the mutating hook (without it, the pod is judged as written, "
                               "like a pod the mutating hook never saw)")
    validate.set_defaults(func=cmd_validate)

    audit = sub.add_parser(
        "audit", help="judge existing pods (files or the live cluster) as if created now; "
                      "exit 1 if any would be denied")
    audit.add_argument("files", nargs="*", metavar="FILE",
                       help="Pod or List files, YAML or JSON ('-' for stdin); "
                            "none: the cluster of the kubeconfig, or in-cluster")
    audit.add_argument("--policies", default=DEFAULT_POLICIES)
    audit.add_argument("--username", help="who wrote the pods (not recorded on a pod): one of "
                       "Airflow's accounts has every pod judged, whatever its labels")
    audit.add_argument("--kubeconfig", help="default: $KUBECONFIG, ~/.kube/config, in-cluster")
    audit.add_argument("--context", help="kubeconfig context")
    audit.add_argument("-n", "--namespace", help="only this namespace (with FILE: the "
                       "namespace of pods that do not say)")
    audit.add_argument("-A", "--all-namespaces", action="store_true")
    audit.add_argument("-l", "--selector", help="label selector, e.g. kubernetes_executor=True")
    audit.add_argument("-o", "--output", choices=("table", "json", "policyreport"),
                       default="table")
    audit.add_argument("--chunk-size", type=int, default=500,
                       help="pods per list request, as kubectl's --chunk-size")
    audit.add_argument("--write-reports", action="store_true",
                       help="create or update one PolicyReport per namespace in the cluster")
    audit.set_defaults(func=cmd_audit)

    policy = sub.add_parser("policy", help="check a policy folder")
    policy_sub = policy.add_subparsers(metavar="ACTION")
    lint = policy_sub.add_parser("lint", help="load every file; print precise errors")
    lint.add_argument("dir")
    lint.set_defaults(func=cmd_policy_lint)
    test = policy_sub.add_parser("test", help="run the test cases kept in DIR/tests")
    test.add_argument("dir")
    test.set_defaults(func=cmd_policy_test)
    return parser


def cmd_serve(args: argparse.Namespace) -> int:
    from webhook.cluster.certs import ensure_dev_certs
    from webhook.serving.server import ServeOptions, configure_logging, serve

    configure_logging(args.log_level)  # the master loads the policies and logs their errors
    if not Path(args.policies).is_dir():
        # A broken folder keeps serving the last good set; a missing one is a wrong flag.
        raise InputError(f"--policies {args.policies} is not a folder of policy files")
    try:
        paths, generated = ensure_dev_certs(Path(args.cert_dir), args.service, args.namespace)
    except (OSError, ValueError) as exc:
        raise InputError(f"certificates in {args.cert_dir}: {exc}") from exc
    if generated:
        print(f"generated a development CA and serving cert in {paths.directory}/ "
              f"(CA: {paths.ca_crt}); use real certs in production", file=sys.stderr)
    if args.patch_ca_bundle:
        from webhook.cluster.ca_injection import (
            CABundleInjector,
            InjectorSettings,
            kubernetes_patcher,
        )

        # Started in the gunicorn master before it forks: one injector per replica, and the
        # workers (forked later) do not inherit the thread.
        CABundleInjector(
            paths.ca_crt, kubernetes_patcher(service=args.service, namespace=args.namespace),
            InjectorSettings(poll_interval=args.ca_poll_interval)).start()
    client_ca = Path(args.client_ca) if args.client_ca else None
    if client_ca is not None and not client_ca.is_file():
        raise InputError(f"--client-ca {client_ca} is not a file (write one with "
                         "`airflow-pod-webhook certs --apiserver-client`)")
    serve(ServeOptions(policies=Path(args.policies), certfile=paths.tls_crt,
                       keyfile=paths.tls_key, host=args.host, port=args.port,
                       workers=args.workers, threads=args.threads,
                       reload_interval=args.reload_interval, log_level=args.log_level,
                       client_ca=client_ca))
    return EXIT_OK


def cmd_certs(args: argparse.Namespace) -> int:
    from webhook.cluster.certs import cert_dns_names, cert_not_after, write_certs

    try:
        paths = write_certs(Path(args.out), args.service, args.namespace, args.key_type,
                            args.days)
    except (OSError, ValueError) as exc:
        raise InputError(str(exc)) from exc
    pem = paths.tls_crt.read_bytes()
    print(f"CA:           {paths.ca_crt}")
    print(f"serving cert: {paths.tls_crt} (key {paths.tls_key})")
    print(f"DNS names:    {', '.join(cert_dns_names(pem))}")
    print(f"valid until:  {cert_not_after(pem).isoformat()}")
    if args.apiserver_client:
        from webhook.cluster.certs import write_apiserver_client

        hosts = args.webhook_host or [f"{args.service}.{args.namespace}.svc"]
        try:
            client = write_apiserver_client(Path(args.out), hosts, args.kubeconfig_path,
                                            args.key_type, args.days)
        except (OSError, ValueError) as exc:
            raise InputError(str(exc)) from exc
        print(f"client CA:    {client.client_ca} (serve --client-ca {client.client_ca})")
        print(f"kube-apiserver client cert: {client.client_cert} (key {client.client_key})")
        print(f"kubeconfig:   {client.kubeconfig} (users: {', '.join(hosts)}); copy it to "
              f"{args.kubeconfig_path} on every control-plane host")
        print(f"admission configuration: {client.admission_configuration} (kube-apiserver "
              "--admission-control-config-file)")
    return EXIT_OK


SELF_PATCH_OVERLAY = "overlays/self-patch-ca-bundle"


def cmd_manifests(args: argparse.Namespace) -> int:
    from webhook.cluster.registration import (
        PLACEHOLDER_REGISTRY,
        dump_yaml,
        render_manifests,
        webhook_configurations,
        webhook_containers,
    )

    if (args.image or args.self_patch_ca_bundle) and not args.all:
        raise InputError("--image and --self-patch-ca-bundle only apply to --all")
    if args.cert_dir is None:
        hint = (" (certs/ holds the development CA of `make serve`: pass --cert-dir certs only "
                "for a test cluster)" if Path("certs", "ca.crt").is_file() else "")
        raise InputError(
            "no --cert-dir: manifests fills caBundle with DIR/ca.crt, the CA that signed the "
            "webhook's serving cert. Create one with `airflow-pod-webhook certs --service "
            "airflow-pod-webhook --namespace airflow-pod-webhook --out DIR`, then pass "
            "--cert-dir DIR; with cert-manager use `kubectl apply -k deploy/overlays/"
            f"cert-manager` instead (deploy/README.md){hint}")
    ca_path = Path(args.cert_dir) / "ca.crt"
    if not ca_path.is_file():
        raise InputError(f"{ca_path} not found: run `airflow-pod-webhook certs --out "
                         f"{args.cert_dir}` first")
    ca = ca_path.read_bytes()
    usernames = _policies(args.policies).settings.airflow_usernames
    if args.all:
        folder = Path(args.deploy_dir)
        if args.self_patch_ca_bundle:
            folder = folder / SELF_PATCH_OVERLAY
        try:
            objects = render_manifests(folder, ca, image=args.image,
                                       airflow_usernames=usernames)
        except FileNotFoundError as exc:
            raise InputError(str(exc)) from exc
        except subprocess.CalledProcessError as exc:
            if "out of bounds for value airflow-pod-webhook" in exc.stderr:
                raise InputError(
                    f"{folder} names no webhook image (deploy/base sets none by default): pass "
                    "--image REF with the image you pushed, or set it in deploy/base with "
                    "`kustomize edit set image airflow-pod-webhook=REF`") from exc
            raise InputError(f"kubectl kustomize {folder} failed: {exc.stderr.strip()}") from exc
        except ValueError as exc:
            raise InputError(f"--image: {exc}") from exc
        unset = [c["image"] for c in webhook_containers(objects)
                 if c["image"].startswith(PLACEHOLDER_REGISTRY)]
        if unset:
            raise InputError(
                f"the webhook image is the placeholder {unset[0]}, which no node can pull (the "
                "fail-closed validating hook would then block every Airflow pod): pass --image "
                "REF with the image you pushed, or set it in deploy/base with `kustomize edit "
                "set image airflow-pod-webhook=REF`")
    else:
        objects = webhook_configurations(ca, args.service, args.namespace, url=args.url,
                                         single_call=args.single_call,
                                         airflow_usernames=usernames)
    sys.stdout.write(dump_yaml(objects))
    return EXIT_OK


def cmd_mutate(args: argparse.Namespace) -> int:
    from webhook.admission import NESTED_TOO_DEEPLY
    from webhook.decide import MUTATE, SKIP, PodRequest, decide

    policies = _policies(args.policies)
    pod, namespace, username = read_pod(args.file)
    try:
        decision = decide(PodRequest(pod, namespace or args.namespace, username or args.username),
                          policies, MUTATE)
    except RecursionError as exc:
        raise InputError(f"{args.file}: {NESTED_TOO_DEEPLY}") from exc
    if decision.verdict == SKIP:
        from webhook.validation.validate import NOT_AIRFLOW

        print(f"skipped: {NOT_AIRFLOW}", file=sys.stderr)
    elif problem := malformed_pod(pod):
        raise InputError(f"{args.file}: malformed pod: {problem}")
    for warning in decision.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    if decision.refusals:
        # Refused is refused, whatever the reason (the server answers 400 or 403).
        for refusal in decision.refusals:
            print(f"refused: {refusal.message}", file=sys.stderr)
        return EXIT_DENIED
    if args.patch:
        print(json.dumps(decision.patch, indent=2))
    else:
        sys.stdout.write(yaml.safe_dump(decision.pod, sort_keys=False))
    return EXIT_OK


def cmd_validate(args: argparse.Namespace) -> int:
    from webhook.admission import NESTED_TOO_DEEPLY
    from webhook.decide import BOTH, UPDATE, VALIDATE, PodRequest, decide
    from webhook.validation.validate import validate_pod

    policies = _policies(args.policies)
    if args.subresource and not args.old:
        raise InputError("--subresource judges an update: give the pod before it with --old")
    if args.old is not None:
        if args.level is not None or args.after_mutation:
            raise InputError("--old judges an update as the webhook does: no --level or "
                             "--after-mutation (a live pod is never mutated again)")
        old, old_namespace, _ = read_pod(args.old)
    worst = EXIT_OK
    for file in args.files:
        try:
            pod, namespace, username = read_pod(file)
        except InputError as exc:
            print(f"{file}: error: {exc}", file=sys.stderr)
            worst = EXIT_BAD_INPUT
            continue
        request = PodRequest(pod, namespace or args.namespace, username or args.username)
        stages = BOTH if args.after_mutation else VALIDATE
        if args.old is not None:
            # A later write to a live pod: judged as the validating hook judges it.
            request = PodRequest(pod, namespace or old_namespace or args.namespace,
                                 username or args.username, operation=UPDATE, old_pod=old,
                                 subresource=args.subresource)
            stages = VALIDATE
        try:
            if args.level is not None:
                # One Pod Security level on any pod, as the cluster's own PSA would judge it.
                result = validate_pod(pod, policies, request.namespace, request.username,
                                      level=args.level, level_version=args.level_version)
                warnings = result.warnings
            else:
                decision = decide(request, policies, stages)
                if decision.caps:
                    print(f"{file}: denied\n  {decision.message}")
                    worst = max(worst, EXIT_DENIED)
                    continue
                if decision.refusals:
                    print(f"{file}: denied (mutating hook)")
                    for refusal in decision.refusals:
                        print(f"  {refusal.message}")
                    worst = max(worst, EXIT_DENIED)
                    continue
                assert decision.validation is not None
                result, pod, warnings = decision.validation, decision.pod, decision.warnings
        except ValueError as exc:
            raise InputError(str(exc)) from exc
        except RecursionError:
            print(f"{file}: error: {NESTED_TOO_DEEPLY}", file=sys.stderr)
            worst = EXIT_BAD_INPUT
            continue
        if result.skipped:
            # Nothing judged it: say so, rather than "allowed".
            print(f"{file}: skipped: {result.skipped}")
            continue
        problem = malformed_pod(pod)
        if problem:
            # kube-apiserver would never decode it: an error, not a pod that passed.
            print(f"{file}: error: malformed pod: {problem}", file=sys.stderr)
            worst = EXIT_BAD_INPUT
            continue
        print(f"{file}: {'allowed' if result.allowed else 'denied'}")
        if not result.allowed:
            print(f"  {result.message}")
            worst = max(worst, EXIT_DENIED)
        for warning in warnings:
            print(f"  warning: {warning}")
        for key, value in sorted(result.audit_annotations.items()):
            print(f"  audit {key}: {value}")
    return worst


def cmd_audit(args: argparse.Namespace) -> int:
    from webhook.audit.command import AuditOptions, run
    from webhook.audit.files import SourceError

    policies = _policies(args.policies)
    options = AuditOptions(
        files=tuple(args.files), output=args.output, kubeconfig=args.kubeconfig,
        context=args.context, namespace=args.namespace, all_namespaces=args.all_namespaces,
        selector=args.selector, write_reports=args.write_reports, page_size=args.chunk_size,
        username=args.username)
    try:
        return run(policies, options, sys.stdout, sys.stderr)
    except SourceError as exc:
        raise InputError(str(exc)) from exc


def cmd_policy_lint(args: argparse.Namespace) -> int:
    from webhook.policy.load import load_policy_dir

    result = load_policy_dir(args.dir)
    for error in result.errors:
        print(as_given(args.dir, error))
    if result.errors:
        print(f"{len(result.errors)} error(s); the webhook would keep its last good policy set")
        return _lint_code(result.errors)
    assert result.policy_set is not None
    print(f"ok: {result.policy_set.document_count} documents, revision {result.revision}")
    return EXIT_OK


def cmd_policy_test(args: argparse.Namespace) -> int:
    from webhook.policy_tests import run_policy_tests

    # The policies are what is under test here: lint errors in them fail the run (1).
    policies = _policies(args.dir, lint_code=EXIT_DENIED)
    tests = Path(args.dir) / "tests"
    if not tests.is_dir():
        raise InputError(f"{tests} is not a folder of test cases")
    results = run_policy_tests(tests, policies)
    if not results:
        raise InputError(f"{tests} holds no test cases (*.yaml)")
    failed = [r for r in results if not r.passed]
    for result in results:
        print(f"{'PASS' if result.passed else 'FAIL'} {result.file}: {result.name}")
        for mismatch in result.mismatches:
            print(f"    {mismatch}")
    print(f"{len(results) - len(failed)} passed, {len(failed)} failed")
    if any(r.unreadable for r in results):
        return EXIT_BAD_INPUT
    return EXIT_DENIED if failed else EXIT_OK


def _lint_code(errors: Any) -> int:
    """2 when a file could not be read as YAML at all (or the folder is missing), else 1."""
    return EXIT_BAD_INPUT if any(e.unreadable for e in errors) else EXIT_DENIED


def _policies(folder: str, lint_code: int = EXIT_BAD_INPUT) -> Any:
    """The policy set, or InputError: exit 2 for an unreadable folder; for lint errors,
    `lint_code` (the policies are input to mutate and validate, the subject of policy test)."""
    from webhook.policy.load import load_policy_dir

    result = load_policy_dir(folder)
    if result.policy_set is None:
        code = _lint_code(result.errors)
        raise InputError(f"policy folder {folder} does not load:\n  "
                         + "\n  ".join(str(as_given(folder, e)) for e in result.errors),
                         EXIT_BAD_INPUT if code == EXIT_BAD_INPUT else lint_code)
    return result.policy_set


def as_given(folder: str, error: Any) -> Any:
    """The error with its file named as the user gave the folder (`policies/10-x.yaml`), so
    editors and CI annotations can open it."""
    from dataclasses import replace

    if error.index < 0 and error.file == str(Path(folder)):
        return error  # the folder itself
    return replace(error, file=os.path.join(folder, error.file))


def malformed_pod(pod: dict) -> str | None:
    """Where a pod is not shaped like a Pod (wrong types; fields this client does not know are
    a newer cluster's, not errors), if anywhere."""
    from webhook.kube.pod_fields import fragment_problems
    from webhook.mutation.mutate import malformed_shape

    problem = malformed_shape(pod)
    if problem:
        return problem
    found = fragment_problems(pod, unknown_fields=False)
    return f"{found[0].path}: {found[0].reason}" if found else None




def read_pod(file: str) -> tuple[dict, str, str | None]:
    """(pod, namespace, username) from a Pod or an AdmissionReview, YAML or JSON, within the
    server's limits: the same size cap, JSON read the same way, YAML without aliases."""
    from webhook.admission import MAX_BODY_BYTES, body_too_large

    try:
        if file == "-":
            data = sys.stdin.buffer.read(MAX_BODY_BYTES + 1)
        else:
            with open(file, "rb") as handle:
                data = handle.read(MAX_BODY_BYTES + 1)
    except OSError as exc:
        raise InputError(f"cannot read {file}: {exc}") from exc
    if len(data) > MAX_BODY_BYTES:
        raise InputError(f"{file}: {body_too_large().message}")
    doc = _decode(file, data)
    if not isinstance(doc, dict):
        raise InputError(f"{file} must hold a Pod or an AdmissionReview")
    return _pod_of(file, doc)


def _decode(file: str, data: bytes) -> Any:
    """JSON exactly as the server reads it; anything else as YAML without anchors or aliases
    (as annotations are read: a few bytes of aliases can expand to gigabytes)."""
    from webhook.admission import BodyError, decode_body
    from webhook.mutation.overrides import load_yaml_without_aliases

    try:
        return decode_body(data)
    except BodyError as exc:
        if "depth limit exceeded" in exc.message:  # JSON too deep for the server
            raise InputError(f"{file}: {exc.message}") from exc
    try:
        return load_yaml_without_aliases(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise InputError(f"{file} is not UTF-8 text: {exc}") from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{file}:{mark.line + 1}:{mark.column + 1}" if mark else file
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise InputError(f"{where}: neither JSON nor YAML: {problem}") from exc
    except RecursionError as exc:
        from webhook.admission import NESTED_TOO_DEEPLY

        raise InputError(f"{file}: {NESTED_TOO_DEEPLY}") from exc


def _pod_of(file: str, doc: dict) -> tuple[dict, str, str | None]:
    if doc.get("kind") == "AdmissionReview":
        from webhook.admission import BadReview, parse_review

        try:
            request = parse_review(doc)
        except BadReview as exc:
            raise InputError(f"{file}: bad AdmissionReview: {exc}") from exc
        if not isinstance(request.object, dict):
            raise InputError(f"{file}: request.object must be a Pod")
        return request.object, request.namespace, request.username
    if doc.get("kind") not in (None, "Pod"):
        raise InputError(f"{file}: kind must be Pod or AdmissionReview, got {doc.get('kind')}")
    meta = doc.get("metadata") if isinstance(doc.get("metadata"), dict) else {}
    namespace = meta.get("namespace") if isinstance(meta.get("namespace"), str) else ""
    return doc, namespace, None
