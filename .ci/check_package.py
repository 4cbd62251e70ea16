"""Check that the deployed stages package for Lambda the way the README deploys them.

Run by ``.ci/run`` after the tests. It builds the ``prod`` stage with
``chalice package --pkg-format terraform`` (the SAM format refuses
``@app.on_s3_event``; this one needs a region but no AWS account) in a throwaway
virtual environment of the Python that matches the pyarrow layer, because Chalice
takes the Lambda runtime from the Python it runs under. Then it checks the zip and the
IAM policy files. One line per check; the exit status is 1 when any check fails.

    python .ci/check_package.py
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
CHALICE_DIR = ROOT / ".chalice"
PACKAGED_STAGE = "prod"
LOCAL_STAGE = "dev"
FUNCTIONS = (
    "api_handler",
    "compact_daily",
    "compact_dirty",
    "note_late_data",
    "watch_backlog",
)
COMPACTION = ("compact_daily", "compact_dirty")
# Invoked by EventBridge or S3, so Lambda retries them and then needs a destination.
ASYNC_FUNCTIONS = ("compact_daily", "compact_dirty", "note_late_data", "watch_backlog")
ALERTS_FILE = ROOT / "deploy" / "alerts.tf.json"
FAILURE_TARGETS = ("aws_sqs_queue", "aws_sns_topic")
# (namespace, metric) of the alarms the deployment guide promises, besides one on
# each asynchronous function's Errors.
REQUIRED_ALARMS = (
    ("AWS/ApiGateway", "5XXError"),
    ("AWS/SQS", "ApproximateNumberOfMessagesVisible"),
    ("tglake", "PendingUpdateCount"),
)
# The named things a Terraform expression can refer to.
_REFERENCE = re.compile(
    r"(?<![\w.\"-])(data\.[a-z0-9_]+\.[\w-]+|var\.\w+|local\.\w+"
    r"|(?:aws|null)_[a-z0-9_]+\.[\w-]+)"
)
_BLOCK_KINDS = {
    "resource": "",
    "data": "data.",
    "variable": "var.",
    "output": "output.",
}
MAX_ZIP_BYTES = 5 * 1024 * 1024
DEFAULT_PYTHON = (3, 12)
HEAVY_PACKAGES = ("pyarrow", "duckdb", "numpy", "pandas")
# Chalice prints this and still exits 0 when a requirement has no Lambda wheel.
MISSING_DEPENDENCIES = "Could not install dependencies"
LAYER_PYTHON = re.compile(r":layer:[A-Za-z-]*Python(\d)(\d+)(?:-Arm64)?:")
PROJECT_FILES = ("app.py", "requirements.txt", "chalicelib", ".chalice", "vendor")


def load_config(chalice_dir: Path = CHALICE_DIR) -> dict[str, Any]:
    """The parsed ``.chalice/config.json``."""
    return json.loads((chalice_dir / "config.json").read_text())


def deployed_stages(config: dict[str, Any]) -> list[str]:
    """Every stage except the local one."""
    return [name for name in config["stages"] if name != LOCAL_STAGE]


def stage_buckets(config: dict[str, Any], stage: str) -> set[str]:
    """The buckets a stage's raw and enriched layers live in."""
    env = config["stages"][stage]["environment_variables"]
    buckets = set()
    for name in ("TGLAKE_RAW", "TGLAKE_ENRICHED"):
        value = env.get(name, "")
        if value.startswith("s3://"):
            buckets.add(value[len("s3://") :].split("/", 1)[0])
    return buckets


def policy_files(config: dict[str, Any], stage: str) -> dict[str, str]:
    """Function name -> the policy file a stage gives it (empty when none)."""
    functions = config["stages"][stage].get("lambda_functions", {})
    return {
        name: functions.get(name, {}).get("iam_policy_file", "") for name in FUNCTIONS
    }


def policy_problems(
    config: dict[str, Any], chalice_dir: Path = CHALICE_DIR
) -> Iterator[str]:
    """Everything wrong with the policy files of the deployed stages."""
    used = set()
    for stage in deployed_stages(config):
        if config["stages"][stage].get("autogen_policy", True):
            yield f"stage {stage} does not set autogen_policy to false"
        buckets = stage_buckets(config, stage)
        for function, filename in policy_files(config, stage).items():
            if not filename:
                yield f"stage {stage} gives {function} no iam_policy_file"
                continue
            used.add(filename)
            path = chalice_dir / filename
            try:
                document = json.loads(path.read_text())
            except (OSError, ValueError) as error:
                yield f"{filename}: not a readable JSON file ({error})"
                continue
            for problem in statement_problems(document, buckets):
                yield f"{filename}: {problem}"
    for path in sorted(chalice_dir.glob("policy-*.json")):
        if path.name not in used:
            yield f"{path.name}: no function of a deployed stage uses it"


def statement_problems(document: Any, buckets: set[str]) -> Iterator[str]:
    """What makes one policy document broader than its stage's buckets."""
    statements = document.get("Statement") if isinstance(document, dict) else None
    if not isinstance(statements, list) or not statements:
        yield "no Statement list"
        return
    for statement in statements:
        sid = statement.get("Sid", "?")
        actions = _as_list(statement.get("Action"))
        resources = _as_list(statement.get("Resource"))
        if "NotAction" in statement or "NotResource" in statement:
            yield f"{sid}: NotAction/NotResource grant more than they name"
        if not actions or not resources:
            yield f"{sid}: needs both Action and Resource"
        for action in actions:
            if "*" in action:
                yield f"{sid}: wildcard action {action}"
        is_s3 = any(action.lower().startswith("s3:") for action in actions)
        for resource in resources:
            if resource.startswith("arn:aws:s3:::"):
                bucket = resource[len("arn:aws:s3:::") :].split("/", 1)[0]
                if bucket not in buckets:
                    yield f"{sid}: names bucket {bucket!r}, not {sorted(buckets)}"
            elif is_s3:
                yield f"{sid}: S3 action on non-bucket resource {resource!r}"


def _as_list(value: Any) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


def layer_python(config: dict[str, Any], stage: str) -> tuple[int, int] | None:
    """The Python version the compaction layer was built for, from its ARN."""
    functions = config["stages"][stage].get("lambda_functions", {})
    for name in COMPACTION:
        for arn in functions.get(name, {}).get("layers", []):
            match = LAYER_PYTHON.search(arn)
            if match:
                return int(match[1]), int(match[2])
    return None


def find_python(version: tuple[int, int]) -> str | None:
    """An interpreter of exactly this version: this one, on PATH, or under pyenv."""
    if sys.version_info[:2] == version:
        return sys.executable
    candidates = []
    name = f"python{version[0]}.{version[1]}"
    if shutil.which(name):
        candidates.append(shutil.which(name))
    pyenv_root = os.environ.get("PYENV_ROOT", str(Path.home() / ".pyenv"))
    prefix = f"{version[0]}.{version[1]}."
    installed = sorted(
        (p for p in Path(pyenv_root, "versions").glob(prefix + "*") if p.is_dir()),
        key=lambda p: [int(x) for x in re.findall(r"\d+", p.name)],
        reverse=True,
    )
    candidates += [str(p / "bin" / "python") for p in installed]
    for candidate in candidates:
        if candidate and _python_version(candidate) == version:
            return candidate
    return None


def _python_version(python: str) -> tuple[int, int] | None:
    try:
        out = subprocess.run(
            [python, "-c", "import sys; print(*sys.version_info[:2])"],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        ).stdout.split()
    except (OSError, subprocess.SubprocessError):
        return None
    return (int(out[0]), int(out[1])) if len(out) == 2 else None


def chalice_requirement() -> str:
    """The Chalice pin of requirements-dev.txt, so CI packages with the tested one."""
    text = (ROOT / "requirements-dev.txt").read_text()
    match = re.search(r"^chalice==\S+", text, re.MULTILINE)
    return match[0] if match else "chalice>=1.34,<2"


def install_chalice(python: str, folder: Path) -> Path:
    """A virtual environment of ``python`` with Chalice; returns its chalice command."""
    subprocess.run([python, "-m", "venv", str(folder)], check=True, timeout=120)
    pip = [str(folder / "bin" / "python"), "-m", "pip", "install", "--quiet"]
    result = subprocess.run(
        [*pip, chalice_requirement()], capture_output=True, text=True, timeout=600
    )
    if result.returncode != 0:
        raise RuntimeError(f"pip could not install Chalice:\n{result.stderr[-2000:]}")
    return folder / "bin" / "chalice"


def copy_project(target: Path) -> None:
    """The files Chalice packages, without caches or local data."""
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "deployments", "deployed")
    target.mkdir(parents=True)
    for name in PROJECT_FILES:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, target / name, ignore=ignore)
        elif source.is_file():
            shutil.copy2(source, target / name)


def package(
    chalice: Sequence[str], project: Path, out: Path
) -> subprocess.CompletedProcess[str]:
    """Run ``chalice package`` with a region and fake credentials, never real ones.

    ``chalice`` is the command that starts Chalice's CLI.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        AWS_DEFAULT_REGION="us-east-1",
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
    )
    command = [
        *chalice,
        "package",
        "--pkg-format",
        "terraform",
        "--stage",
        PACKAGED_STAGE,
        str(out),
    ]
    return subprocess.run(
        command, cwd=project, env=env, capture_output=True, text=True, timeout=600
    )


def zip_heavy(names: list[str]) -> list[str]:
    """The heavy packages found at the top of a deployment zip."""
    tops = {name.split("/", 1)[0].lower() for name in names}
    return sorted(
        package
        for package in HEAVY_PACKAGES
        if package in tops or any(top.startswith(package + "-") for top in tops)
    )


def terraform_problems(
    template: dict[str, Any], runtime: str | None, config: dict[str, Any]
) -> Iterator[str]:
    """Where the generated Lambda functions differ from what config.json asks."""
    functions = template.get("resource", {}).get("aws_lambda_function", {})
    if sorted(functions) != sorted(FUNCTIONS):
        yield f"functions {sorted(functions)}, expected {sorted(FUNCTIONS)}"
        return
    wanted = config["stages"][PACKAGED_STAGE]["lambda_functions"]
    for name, function in functions.items():
        if runtime and function.get("runtime") != runtime:
            yield f"{name} runs on {function.get('runtime')}, the layer is {runtime}"
        if (function.get("layers") or []) != wanted[name].get("layers", []):
            yield f"{name} layers {function.get('layers')}"
        concurrency = function.get("reserved_concurrent_executions")
        if concurrency != wanted[name].get("reserved_concurrency"):
            yield f"{name} reserved concurrency {concurrency}"


def alerts_problems(alerts: dict[str, Any]) -> Iterator[str]:
    """What the alerts file lacks: a failure destination per asynchronous function,
    an Errors alarm per function, the promised alarms, and someone to tell."""
    resources = alerts.get("resource", {})
    configs = resources.get("aws_lambda_function_event_invoke_config", {})
    targets = {
        _function_of(body.get("function_name")): body
        for name, body in configs.items()
        if name != "//"
    }
    alarms = {
        name: body
        for name, body in resources.get("aws_cloudwatch_metric_alarm", {}).items()
        if name != "//"
    }
    for function in ASYNC_FUNCTIONS:
        config = targets.get(function)
        if config is None:
            yield f"{function} has no aws_lambda_function_event_invoke_config"
            continue
        failure = _block(_block(config.get("destination_config")).get("on_failure"))
        destination = str(failure.get("destination", ""))
        if not any(f"${{{target}." in destination for target in FAILURE_TARGETS):
            yield f"{function} has no on_failure destination (SQS queue or SNS topic)"
        errors = [
            name
            for name, alarm in alarms.items()
            if alarm.get("metric_name") == "Errors"
            and _function_of(_block(alarm.get("dimensions")).get("FunctionName"))
            == function
        ]
        if not errors:
            yield f"{function} has no alarm on its Lambda Errors"
    present = {
        (alarm.get("namespace"), alarm.get("metric_name")) for alarm in alarms.values()
    }
    for namespace, metric in REQUIRED_ALARMS:
        if (namespace, metric) not in present:
            yield f"no alarm on {namespace} {metric}"
    for name, alarm in alarms.items():
        if not alarm.get("alarm_actions"):
            yield f"alarm {name} notifies nobody (no alarm_actions)"


def reference_problems(
    documents: dict[str, dict[str, Any]], source: str
) -> Iterator[str]:
    """References of ``documents[source]`` that no document defines, and names that
    two documents define (Terraform refuses both)."""
    defined: dict[str, str] = {}
    for filename, document in documents.items():
        for address in _addresses(document):
            if address in defined:
                yield f"{address} is defined in both {defined[address]} and {filename}"
            defined[address] = filename
    for reference in sorted(set(_references(documents[source]))):
        if reference not in defined:
            yield f"{source} refers to {reference}, which no file defines"


def name_problems(
    documents: dict[str, dict[str, Any]], source: str, queues: set[str]
) -> Iterator[str]:
    """Names the alerts file builds from Chalice's app and stage that differ from
    the functions' real names, or from the queue the policies let them send to."""
    alerts = documents[source]
    resources: dict[str, dict[str, Any]] = {}
    values: dict[str, str] = {}
    for document in documents.values():
        for type_, named in document.get("resource", {}).items():
            resources.setdefault(type_, {}).update(named)
        chalice = document.get("data", {}).get("null_data_source", {}).get("chalice")
        for key, value in (chalice or {}).get("inputs", {}).items():
            values[f"data.null_data_source.chalice.outputs.{key}"] = value
    for name, value in alerts.get("locals", {}).items():
        values[f"local.{name}"] = _resolve(value, values)
    functions = resources.get("aws_lambda_function", {})
    for key, group in alerts["resource"].get("aws_cloudwatch_log_group", {}).items():
        wanted = "/aws/lambda/" + functions.get(key, {}).get("function_name", "?")
        if _resolve(group["name"], values) != wanted:
            yield f"log group {key} is {_resolve(group['name'], values)}, not {wanted}"
    for key, queue in alerts["resource"].get("aws_sqs_queue", {}).items():
        if _resolve(queue["name"], values) not in queues:
            yield f"queue {key} is {_resolve(queue['name'], values)}, not {queues}"


def policy_queues(config: dict[str, Any], stage: str) -> set[str]:
    """The SQS queues a stage's policies let its functions send to."""
    queues = set()
    for filename in policy_files(config, stage).values():
        document = json.loads((CHALICE_DIR / filename).read_text())
        for statement in document["Statement"]:
            for resource in _as_list(statement.get("Resource")):
                if resource.startswith("arn:aws:sqs:"):
                    queues.add(resource.rsplit(":", 1)[1])
    return queues


def _resolve(text: str, values: dict[str, str]) -> str:
    for name, value in values.items():
        text = text.replace("${" + name + "}", value)
    return text


def _addresses(document: dict[str, Any]) -> Iterator[str]:
    for kind, prefix in _BLOCK_KINDS.items():
        blocks = document.get(kind, {})
        if kind in ("resource", "data"):
            for type_, named in blocks.items():
                for name in named:
                    if type_ != "//" and name != "//":
                        yield f"{prefix}{type_}.{name}"
        else:
            yield from (f"{prefix}{name}" for name in blocks if name != "//")
    # JSON syntax allows one "locals" object or a list of them.
    locals_ = document.get("locals", {})
    for block in locals_ if isinstance(locals_, list) else [locals_]:
        yield from (f"local.{name}" for name in block if name != "//")


def _references(value: Any, *, in_depends_on: bool = False) -> Iterator[str]:
    if isinstance(value, dict):
        for key, item in value.items():
            if key != "//":
                yield from _references(item, in_depends_on=key == "depends_on")
    elif isinstance(value, list):
        for item in value:
            yield from _references(item, in_depends_on=in_depends_on)
    elif isinstance(value, str):
        expressions = [value] if in_depends_on else _interpolations(value)
        for expression in expressions:
            yield from _REFERENCE.findall(expression)


def _interpolations(text: str) -> Iterator[str]:
    """The expressions inside ``${...}``, nested braces included."""
    start = text.find("${")
    while start != -1:
        depth, end = 0, start + 1
        for end in range(start + 1, len(text)):
            depth += {"{": 1, "}": -1}.get(text[end], 0)
            if depth == 0:
                break
        yield text[start + 2 : end]
        start = text.find("${", end)


def _function_of(expression: Any) -> str:
    match = re.fullmatch(r"\$\{aws_lambda_function\.([\w-]+)\.\w+\}", str(expression))
    return match[1] if match else ""


def _block(value: Any) -> dict[str, Any]:
    """A nested block, written in JSON as an object or a list of one object."""
    if isinstance(value, list):
        value = value[0] if value else {}
    return value if isinstance(value, dict) else {}


def load_terraform(folder: Path) -> dict[str, dict[str, Any]]:
    """Every ``*.tf.json`` of a folder by file name, as Terraform would read them."""
    return {
        path.name: json.loads(path.read_text())
        for path in sorted(folder.glob("*.tf.json"))
    }


class Report:
    """Prints one line per check and remembers whether any failed."""

    def __init__(self) -> None:
        self.failed = 0

    def check(self, ok: bool, message: str, detail: str = "") -> bool:
        print(f"{'ok  ' if ok else 'FAIL'} {message}", flush=True)
        if not ok:
            self.failed += 1
            if detail:
                print("     " + detail.strip().replace("\n", "\n     "), flush=True)
        return ok

    def note(self, message: str) -> None:
        print(f"note {message}", flush=True)


def check_policies(report: Report, config: dict[str, Any]) -> None:
    """The policy files of every deployed stage."""
    problems = list(policy_problems(config))
    count = len(list(CHALICE_DIR.glob("policy-*.json")))
    report.check(
        not problems,
        f"{count} policy files are valid JSON naming only their stage's buckets",
        "\n".join(problems),
    )


def check_alerts_file(report: Report) -> None:
    """The alerts file on its own: JSON, destinations and alarms."""
    try:
        alerts = json.loads(ALERTS_FILE.read_text())
    except (OSError, ValueError) as error:
        report.check(False, f"{ALERTS_FILE.name} is readable JSON", str(error))
        return
    problems = list(alerts_problems(alerts))
    report.check(
        not problems,
        f"{ALERTS_FILE.name} gives every asynchronous function a failure destination "
        "and has the promised alarms",
        "\n".join(problems),
    )


def check_merged_alerts(report: Report, out: Path, config: dict[str, Any]) -> None:
    """The alerts file beside the generated one: every reference resolves."""
    shutil.copy2(ALERTS_FILE, out / ALERTS_FILE.name)
    try:
        documents = load_terraform(out)
    except ValueError as error:
        report.check(False, "every *.tf.json of the package is JSON", str(error))
        return
    problems = list(reference_problems(documents, ALERTS_FILE.name))
    report.check(
        not problems,
        f"every reference of {ALERTS_FILE.name} resolves beside chalice.tf.json",
        "\n".join(problems),
    )
    queues = policy_queues(config, PACKAGED_STAGE)
    problems = list(name_problems(documents, ALERTS_FILE.name, queues))
    report.check(
        not problems,
        "its log groups and failure queue carry the names Chalice and the policies use",
        "\n".join(problems),
    )


def check_package(report: Report, config: dict[str, Any]) -> None:
    """Package the prod stage under the layer's Python and check what comes out."""
    version = layer_python(config, PACKAGED_STAGE) or DEFAULT_PYTHON
    python = find_python(version)
    runtime: str | None = f"python{version[0]}.{version[1]}"
    if python is None:
        python, runtime = sys.executable, None
        report.note(
            f"no Python {version[0]}.{version[1]} here: packaging under "
            f"{sys.version.split()[0]}, whose runtime differs from the layer's"
        )
    with tempfile.TemporaryDirectory(prefix="tglake-package-") as temp:
        folder = Path(temp)
        try:
            chalice = install_chalice(python, folder / "venv")
            copy_project(folder / "project")
            result = package([str(chalice)], folder / "project", folder / "out")
        except (RuntimeError, OSError, subprocess.SubprocessError) as error:
            report.check(False, "set up and run chalice package", str(error))
            return
        output = result.stdout + result.stderr
        found = ".".join(map(str, _python_version(python) or ()))
        if not report.check(
            result.returncode == 0,
            f"chalice package --pkg-format terraform --stage {PACKAGED_STAGE} "
            f"(Python {found})",
            output[-3000:],
        ):
            return
        report.check(
            MISSING_DEPENDENCIES not in output,
            "every requirement installed for Lambda",
            output[-3000:],
        )
        check_output(report, folder / "out", runtime, config)


def check_output(
    report: Report, out: Path, runtime: str | None, config: dict[str, Any]
) -> None:
    """The zip's size and contents, and the functions in the Terraform file."""
    archive = out / "deployment.zip"
    size = archive.stat().st_size
    report.check(
        size < MAX_ZIP_BYTES,
        f"deployment.zip is {size / 2**20:.2f} MiB (limit {MAX_ZIP_BYTES >> 20})",
    )
    with zipfile.ZipFile(archive) as handle:
        heavy = zip_heavy(handle.namelist())
    report.check(
        not heavy,
        f"deployment.zip holds none of {', '.join(HEAVY_PACKAGES)}",
        f"found: {heavy}",
    )
    template = json.loads((out / "chalice.tf.json").read_text())
    problems = list(terraform_problems(template, runtime, config))
    report.check(
        not problems,
        "generated functions carry the configured runtime, layers and concurrency",
        "\n".join(problems),
    )
    check_merged_alerts(report, out, config)


def main() -> int:
    """Run every check; 1 when any failed."""
    report = Report()
    config = load_config()
    check_policies(report, config)
    check_alerts_file(report)
    check_package(report, config)
    print(f"{'package checks failed' if report.failed else 'package checks passed'}")
    return 1 if report.failed else 0


if __name__ == "__main__":
    sys.exit(main())
