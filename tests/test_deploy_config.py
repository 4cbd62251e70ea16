"""The deployment configuration: stages, per-function settings and IAM policies."""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from chalice.config import Config

from chalicelib import backlog
from chalicelib import config as tglake_config
from chalicelib.config import Settings

ROOT = Path(__file__).resolve().parents[1]
CHALICE_DIR = ROOT / ".chalice"
DEPLOYED = ("staging", "prod")
FUNCTIONS = (
    "api_handler",
    "compact_daily",
    "compact_dirty",
    "note_late_data",
    "watch_backlog",
)
COMPACTION = ("compact_daily", "compact_dirty")
ASYNCHRONOUS = ("compact_daily", "compact_dirty", "note_late_data", "watch_backlog")
# What the README's fill-in command replaces, with values of the right shape.
PLACEHOLDERS = {
    "{account_id}": "111122223333",
    "{region}": "eu-west-1",
    "{pandas_layer_version}": "26",
    "{bot_id}": "7000000001",
    "{chat_ids}": "-1001000000001,-1001000000002",
    "{timezone}": "America/Sao_Paulo",
}
BOT_TOKEN = re.compile(r"\d{5,}:[A-Za-z0-9_-]{30,}")


def _load_checker() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "check_package", ROOT / ".ci" / "check_package.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


checker = _load_checker()


@pytest.fixture(scope="module")
def chalice_config() -> dict[str, Any]:
    return json.loads((CHALICE_DIR / "config.json").read_text())


def _fill(text: str) -> str:
    for placeholder, value in PLACEHOLDERS.items():
        text = text.replace(placeholder, value)
    return text


def _environment(chalice_config: dict[str, Any], stage: str) -> dict[str, str]:
    return chalice_config["stages"][stage]["environment_variables"]


def _function(chalice_config: dict[str, Any], stage: str, name: str) -> Config:
    """The settings Chalice itself resolves for one function of one stage."""
    return Config(
        chalice_stage=stage, function_name=name, config_from_disk=chalice_config
    )


def _policy(chalice_config: dict[str, Any], stage: str, name: str) -> dict[str, Any]:
    filename = _function(chalice_config, stage, name).iam_policy_file
    return json.loads((CHALICE_DIR / filename).read_text())


def _grants(policy: dict[str, Any]) -> set[tuple[str, str]]:
    """Every (action, resource) pair a policy allows."""
    pairs = set()
    for statement in policy["Statement"]:
        assert statement["Effect"] == "Allow"
        actions = statement["Action"]
        resources = statement["Resource"]
        for action in [actions] if isinstance(actions, str) else actions:
            for resource in [resources] if isinstance(resources, str) else resources:
                pairs.add((action, resource))
    return pairs


def _bucket_arn(chalice_config: dict[str, Any], stage: str, layer: str) -> str:
    location = _environment(chalice_config, stage)[f"TGLAKE_{layer}"]
    return "arn:aws:s3:::" + location.removeprefix("s3://").split("/")[0]


def _settings_names() -> set[str]:
    source = (ROOT / "chalicelib" / "config.py").read_text()
    return set(re.findall(r'"(TGLAKE_[A-Z_]+)"', source))


def test_dev_stays_a_local_stage_that_sets_only_its_name(
    chalice_config: dict[str, Any],
) -> None:
    assert chalice_config["stages"]["dev"] == {
        "api_gateway_stage": "api",
        "environment_variables": {"TGLAKE_STAGE": "dev"},
    }
    assert "environment_variables" not in chalice_config
    assert "lambda_functions" not in chalice_config


def test_the_stages_are_dev_staging_and_prod(chalice_config: dict[str, Any]) -> None:
    assert sorted(chalice_config["stages"]) == ["dev", "prod", "staging"]
    assert checker.deployed_stages(chalice_config) == ["staging", "prod"]


@pytest.mark.parametrize("stage", DEPLOYED)
def test_each_deployed_stage_has_its_own_api_gateway_stage(
    chalice_config: dict[str, Any], stage: str
) -> None:
    # Both REST APIs are named after the app; the stage keeps their metrics apart.
    assert chalice_config["stages"][stage]["api_gateway_stage"] == stage


@pytest.mark.parametrize("stage", DEPLOYED)
def test_a_deployed_stage_sets_every_setting_except_the_secret(
    chalice_config: dict[str, Any], stage: str
) -> None:
    environment = _environment(chalice_config, stage)

    missing = _settings_names() - {"TGLAKE_SECRET_TOKEN"} - set(environment)

    assert not missing, f"add {sorted(missing)} to stages.{stage}"
    assert environment["TGLAKE_STAGE"] == stage
    assert environment["TGLAKE_RAW"].startswith("s3://")
    assert environment["TGLAKE_ENRICHED"].startswith("s3://")


@pytest.mark.parametrize("stage", DEPLOYED)
def test_a_filled_in_stage_passes_the_deployed_checks(
    chalice_config: dict[str, Any], stage: str
) -> None:
    environment = json.loads(_fill(json.dumps(_environment(chalice_config, stage))))

    settings = Settings.from_env(environment)

    assert settings.is_deployed
    assert settings.secret_parameter == f"/tglake/{stage}/webhook-secret"
    assert settings.chat_ids == {-1001000000001, -1001000000002}
    bucket = environment["TGLAKE_RAW"].removeprefix("s3://")
    assert tglake_config.raw_event_source(environment) == (bucket, "telegram/")


def test_the_placeholders_are_exactly_those_the_fill_in_command_replaces() -> None:
    files = [CHALICE_DIR / "config.json", *CHALICE_DIR.glob("policy-*.json")]

    found = {m for f in files for m in re.findall(r"\{[a-z_]+\}", f.read_text())}

    # A checkout that has been filled in has none left, which is fine too.
    assert found <= set(PLACEHOLDERS)


@pytest.mark.parametrize("stage", DEPLOYED)
def test_no_secret_is_written_into_the_configuration(
    chalice_config: dict[str, Any], stage: str
) -> None:
    environment = _environment(chalice_config, stage)

    assert "TGLAKE_SECRET_TOKEN" not in environment
    assert "TELEGRAM_BOT_TOKEN" not in environment
    assert not BOT_TOKEN.search((CHALICE_DIR / "config.json").read_text())
    parameter = environment["TGLAKE_SECRET_PARAMETER"]
    webhook = _grants(_policy(chalice_config, stage, "api_handler"))
    [(action, arn)] = [pair for pair in webhook if pair[0].startswith("ssm:")]
    assert action == "ssm:GetParameter"
    assert re.fullmatch(rf"arn:aws:ssm:[^:]+:[^:]+:parameter{parameter}", arn)


def test_policy_files_are_json_and_name_only_their_stage_buckets(
    chalice_config: dict[str, Any],
) -> None:
    assert list(checker.policy_problems(chalice_config)) == []


@pytest.mark.parametrize(
    ("statement", "complaint"),
    [
        ({"Action": "s3:GetObject", "Resource": "*"}, "non-bucket resource"),
        ({"Action": "s3:*", "Resource": "arn:aws:s3:::raw/*"}, "wildcard action"),
        ({"Action": "s3:PutObject", "Resource": "arn:aws:s3:::other/*"}, "'other'"),
        ({"Action": "s3:ListBucket", "Resource": "arn:aws:s3:::*"}, "'*'"),
        ({"Action": "s3:GetObject", "NotResource": "arn:aws:s3:::raw/x"}, "NotAction"),
    ],
)
def test_the_policy_check_refuses_broad_statements(
    statement: dict[str, Any], complaint: str
) -> None:
    document = {"Version": "2012-10-17", "Statement": [{"Sid": "X", **statement}]}

    problems = list(checker.statement_problems(document, {"raw"}))

    assert any(complaint in problem for problem in problems), problems


@pytest.mark.parametrize("stage", DEPLOYED)
@pytest.mark.parametrize("name", FUNCTIONS)
def test_each_function_has_its_own_policy_file(
    chalice_config: dict[str, Any], stage: str, name: str
) -> None:
    function = _function(chalice_config, stage, name)

    assert function.autogen_policy is False
    assert function.iam_policy_file == f"policy-{stage}-{name}.json"
    assert (CHALICE_DIR / function.iam_policy_file).is_file()


@pytest.mark.parametrize("stage", DEPLOYED)
@pytest.mark.parametrize("name", COMPACTION)
def test_compaction_runs_alone_with_pyarrow_from_a_layer(
    chalice_config: dict[str, Any], stage: str, name: str
) -> None:
    function = _function(chalice_config, stage, name)

    assert function.reserved_concurrency == 1
    assert function.lambda_memory_size >= 1024
    assert function.lambda_timeout >= 300
    [layer] = function.layers
    assert re.fullmatch(r"arn:aws:lambda:[^:]+:[^:]+:layer:[^:]+:[^:]+", layer)


@pytest.mark.parametrize("stage", DEPLOYED)
def test_the_webhook_is_small_fast_and_has_no_layer(
    chalice_config: dict[str, Any], stage: str
) -> None:
    function = _function(chalice_config, stage, "api_handler")

    assert not function.layers
    assert function.lambda_memory_size <= 512
    # API Gateway answers 504 after 29 seconds whatever the Lambda does.
    assert function.lambda_timeout < 29
    assert function.reserved_concurrency is None


@pytest.mark.parametrize("stage", DEPLOYED)
def test_the_webhook_writes_only_its_raw_prefixes(
    chalice_config: dict[str, Any], stage: str
) -> None:
    raw = _bucket_arn(chalice_config, stage, "RAW")

    grants = _grants(_policy(chalice_config, stage, "api_handler"))

    s3 = {pair for pair in grants if pair[0].startswith("s3:")}
    assert s3 == {
        ("s3:PutObject", f"{raw}/telegram/*"),
        ("s3:PutObject", f"{raw}/quarantine/*"),
        ("s3:PutObject", f"{raw}/state/allowed-chats/*"),
        ("s3:GetObject", f"{raw}/state/allowed-chats/*"),
        # Without ListBucket a missing key answers 403, read as a storage failure.
        ("s3:ListBucket", raw),
    }


@pytest.mark.parametrize("stage", DEPLOYED)
@pytest.mark.parametrize("name", COMPACTION)
def test_compaction_reads_raw_and_writes_only_enriched(
    chalice_config: dict[str, Any], stage: str, name: str
) -> None:
    raw = _bucket_arn(chalice_config, stage, "RAW")
    enriched = _bucket_arn(chalice_config, stage, "ENRICHED")

    grants = _grants(_policy(chalice_config, stage, name))

    on_raw = {action for action, resource in grants if resource.startswith(raw)}
    assert on_raw == {"s3:ListBucket", "s3:GetObject"}
    for verb in ("s3:PutObject", "s3:GetObject", "s3:DeleteObject"):
        assert (verb, f"{enriched}/telegram/*") in grants
        assert (verb, f"{enriched}/state/*") in grants


@pytest.mark.parametrize("stage", DEPLOYED)
def test_the_s3_hook_may_only_mark_days_dirty(
    chalice_config: dict[str, Any], stage: str
) -> None:
    enriched = _bucket_arn(chalice_config, stage, "ENRICHED")

    grants = _grants(_policy(chalice_config, stage, "note_late_data"))

    s3 = {pair for pair in grants if pair[0].startswith("s3:")}
    assert s3 == {("s3:PutObject", f"{enriched}/state/dirty/*")}


@pytest.mark.parametrize("stage", DEPLOYED)
@pytest.mark.parametrize("name", ASYNCHRONOUS)
def test_asynchronous_functions_may_send_failures_to_the_queue(
    chalice_config: dict[str, Any], stage: str, name: str
) -> None:
    grants = _grants(_policy(chalice_config, stage, name))

    [(action, queue)] = [pair for pair in grants if pair[0].startswith("sqs:")]
    assert action == "sqs:SendMessage"
    assert re.fullmatch(rf"arn:aws:sqs:[^:]+:[^:]+:tglake-{stage}-failures", queue)


@pytest.mark.parametrize("stage", DEPLOYED)
@pytest.mark.parametrize("name", FUNCTIONS)
def test_every_function_may_write_only_its_own_logs(
    chalice_config: dict[str, Any], stage: str, name: str
) -> None:
    # Chalice names the route's function after the app and stage alone.
    function = f"tglake-{stage}" if name == "api_handler" else f"tglake-{stage}-{name}"
    group = rf"arn:aws:logs:[^:]+:[^:]+:log-group:/aws/lambda/{function}(:\*)?"

    grants = _grants(_policy(chalice_config, stage, name))

    logs = {resource for action, resource in grants if action.startswith("logs:")}
    assert len(logs) == 2
    assert all(re.fullmatch(group, resource) for resource in logs), logs


def test_the_policy_check_finds_missing_and_unused_policy_files(
    tmp_path: Path,
) -> None:
    document = {
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "A", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*"}
        ],
    }
    (tmp_path / "policy-prod-api_handler.json").write_text(json.dumps(document))
    (tmp_path / "policy-old.json").write_text(json.dumps(document))
    (tmp_path / "policy-prod-compact_daily.json").write_text("{not json")
    functions = {
        "api_handler": {"iam_policy_file": "policy-prod-api_handler.json"},
        "compact_daily": {"iam_policy_file": "policy-prod-compact_daily.json"},
    }
    stage = {
        "autogen_policy": False,
        "environment_variables": {"TGLAKE_RAW": "s3://b", "TGLAKE_ENRICHED": "s3://c"},
        "lambda_functions": functions,
    }
    config = {"stages": {"dev": {}, "prod": stage}}

    problems = list(checker.policy_problems(config, tmp_path))

    assert problems[0].startswith("policy-prod-compact_daily.json: not a readable")
    assert problems[1:] == [
        "stage prod gives compact_dirty no iam_policy_file",
        "stage prod gives note_late_data no iam_policy_file",
        "stage prod gives watch_backlog no iam_policy_file",
        "policy-old.json: no function of a deployed stage uses it",
    ]


@pytest.fixture(scope="module")
def alerts() -> dict[str, Any]:
    return json.loads(checker.ALERTS_FILE.read_text())


def _without(document: dict[str, Any], *path: str) -> dict[str, Any]:
    """A deep copy of ``document`` with the key at ``path`` removed."""
    copy = json.loads(json.dumps(document))
    parent = copy
    for key in path[:-1]:
        parent = parent[key]
    del parent[path[-1]]
    return copy


def test_the_asynchronous_functions_are_the_apps_schedules_and_s3_hooks() -> None:
    import app

    sources = {source.name for source in app.app.event_sources}

    assert sources == set(ASYNCHRONOUS) == set(checker.ASYNC_FUNCTIONS)


@pytest.mark.parametrize("stage", DEPLOYED)
def test_the_backlog_watcher_is_small_and_reads_only_the_bot_token(
    chalice_config: dict[str, Any], stage: str
) -> None:
    function = _function(chalice_config, stage, "watch_backlog")
    parameter = _environment(chalice_config, stage)["TGLAKE_BOT_TOKEN_PARAMETER"]

    policy = _policy(chalice_config, stage, "watch_backlog")

    assert not function.layers
    assert function.lambda_memory_size <= 256
    assert function.lambda_timeout <= 60
    assert parameter == f"/tglake/{stage}/bot-token"
    grants = _grants(policy)
    assert not {action for action, _ in grants if action.startswith("s3:")}
    [(_, arn)] = [pair for pair in grants if pair[0] == "ssm:GetParameter"]
    assert re.fullmatch(rf"arn:aws:ssm:[^:]+:[^:]+:parameter{parameter}", arn)
    [metrics] = [
        statement
        for statement in policy["Statement"]
        if statement["Action"] == "cloudwatch:PutMetricData"
    ]
    condition = {"StringEquals": {"cloudwatch:namespace": backlog.NAMESPACE}}
    assert metrics["Condition"] == condition


def test_every_asynchronous_function_has_a_failure_destination_and_alarms(
    alerts: dict[str, Any],
) -> None:
    assert list(checker.alerts_problems(alerts)) == []


@pytest.mark.parametrize("name", ASYNCHRONOUS)
def test_each_failure_destination_is_the_failure_queue(
    alerts: dict[str, Any], name: str
) -> None:
    configs = alerts["resource"]["aws_lambda_function_event_invoke_config"]

    config = configs[name]

    assert config["function_name"] == f"${{aws_lambda_function.{name}.function_name}}"
    destination = config["destination_config"]["on_failure"]["destination"]
    assert destination == "${aws_sqs_queue.tglake_failures.arn}"
    # Lambda checks the role's permission when the destination is attached.
    assert config["depends_on"] == [f"aws_iam_role_policy.{name}_role"]


def test_the_backlog_alarm_watches_the_metric_the_function_publishes(
    alerts: dict[str, Any],
) -> None:
    alarms = alerts["resource"]["aws_cloudwatch_metric_alarm"]

    alarm = alarms["webhook_backlog"]

    assert (alarm["namespace"], alarm["metric_name"]) == (
        backlog.NAMESPACE,
        backlog.PENDING_METRIC,
    )
    assert list(alarm["dimensions"]) == ["Stage"]
    assert alarms["webhook_delivery_errors"]["metric_name"] == backlog.ERROR_AGE_METRIC
    assert all(
        alarm["alarm_actions"] == ["${aws_sns_topic.tglake_alerts.arn}"]
        for alarm in alarms.values()
    )


@pytest.mark.parametrize(
    ("path", "complaint"),
    [
        (
            ("resource", "aws_lambda_function_event_invoke_config", "note_late_data"),
            "note_late_data has no aws_lambda_function_event_invoke_config",
        ),
        (
            (
                "resource",
                "aws_lambda_function_event_invoke_config",
                "watch_backlog",
                "destination_config",
            ),
            "watch_backlog has no on_failure destination (SQS queue or SNS topic)",
        ),
        (
            ("resource", "aws_cloudwatch_metric_alarm", "compact_dirty_errors"),
            "compact_dirty has no alarm on its Lambda Errors",
        ),
        (
            ("resource", "aws_cloudwatch_metric_alarm", "webhook_backlog"),
            "no alarm on tglake PendingUpdateCount",
        ),
        (
            ("resource", "aws_cloudwatch_metric_alarm", "webhook_5xx", "alarm_actions"),
            "alarm webhook_5xx notifies nobody (no alarm_actions)",
        ),
    ],
)
def test_the_alerts_check_names_what_is_missing(
    alerts: dict[str, Any], path: tuple[str, ...], complaint: str
) -> None:
    problems = list(checker.alerts_problems(_without(alerts, *path)))

    assert problems == [complaint]


def test_the_reference_check_finds_undefined_and_doubly_defined_names() -> None:
    generated = {
        "resource": {"aws_lambda_function": {"compact_daily": {}}},
        "output": {"RestAPIId": {"value": "x"}},
    }
    alerts = {
        "output": {"RestAPIId": {"value": "${aws_lambda_function.compact_daily.arn}"}},
        "resource": {
            "aws_sqs_queue": {"q": {"name": "${local.missing}-${var.stage}"}},
            "aws_lambda_function_event_invoke_config": {
                "x": {
                    "function_name": "${aws_lambda_function.compact_daily.arn}",
                    "depends_on": ["aws_iam_role_policy.compact_daily_role"],
                }
            },
        },
    }
    documents = {"chalice.tf.json": generated, "alerts.tf.json": alerts}

    problems = list(checker.reference_problems(documents, "alerts.tf.json"))

    assert problems == [
        "output.RestAPIId is defined in both chalice.tf.json and alerts.tf.json",
        "alerts.tf.json refers to aws_iam_role_policy.compact_daily_role, "
        "which no file defines",
        "alerts.tf.json refers to local.missing, which no file defines",
        "alerts.tf.json refers to var.stage, which no file defines",
    ]


@pytest.fixture(scope="module")
def packaged(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    """The prod stage packaged for Terraform, with the alerts file beside it."""
    # The project without requirements: Chalice then runs no pip, which takes a
    # second and no network. .ci/check_package.py does the same with them.
    folder = tmp_path_factory.mktemp("package")
    project, out = folder / "project", folder / "out"
    checker.copy_project(project)
    (project / "requirements.txt").write_text("")
    chalice = [sys.executable, "-c", "from chalice.cli import main; main()"]
    result = checker.package(chalice, project, out)
    assert result.returncode == 0, result.stdout + result.stderr
    shutil.copy2(checker.ALERTS_FILE, out)
    return checker.load_terraform(out)


def test_the_alerts_file_fits_the_terraform_chalice_generates(
    packaged: dict[str, dict[str, Any]], chalice_config: dict[str, Any]
) -> None:
    queues = checker.policy_queues(chalice_config, "prod")

    assert sorted(packaged) == ["alerts.tf.json", "chalice.tf.json"]
    assert list(checker.reference_problems(packaged, "alerts.tf.json")) == []
    assert queues == {"tglake-prod-failures"}
    assert list(checker.name_problems(packaged, "alerts.tf.json", queues)) == []


def test_the_name_check_finds_a_log_group_that_is_not_the_functions(
    packaged: dict[str, dict[str, Any]],
) -> None:
    documents = json.loads(json.dumps(packaged))
    groups = documents["alerts.tf.json"]["resource"]["aws_cloudwatch_log_group"]
    groups["compact_daily"]["name"] = "/aws/lambda/${local.tglake_name}-compact-daily"

    problems = list(
        checker.name_problems(documents, "alerts.tf.json", {"tglake-prod-failures"})
    )

    assert problems == [
        "log group compact_daily is /aws/lambda/tglake-prod-compact-daily, "
        "not /aws/lambda/tglake-prod-compact_daily"
    ]
