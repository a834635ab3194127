"""Warehouse sign-in rules and no credentials in pipelines.toml, with problems that never quote the secret."""

from __future__ import annotations

import pytest

from chalicelib.pipelines import CatalogError, parse_catalog

IAM_ROLE = 'iam_role = "arn:aws:iam::123456789012:role/RedshiftS3"'
SECRET = "arn:aws:secretsmanager:us-east-1:123456789012:secret:rs-loader-AbCdEf"
LOAD = """
[[loads]]
name = "orders"
warehouse = "main"
bucket = "landing"
prefix = "orders/"
table = "sales.orders"
format = "csv"
"""
# Distinctive values: each test checks that none of them is repeated back in an error.
PASSWORD = "Hunter2-Zq9xPw-SECRETVALUE"
KEY_ID = "AKIAZZTESTLEAK000001"
SECRET_KEY = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYZZLEAKLEAK"


def warehouse(*lines: str, target: str = 'workgroup = "analytics"') -> str:
    return "\n".join(["[warehouses.main]", target, 'database = "dev"', IAM_ROLE, *lines]) + "\n"


def problems(text: str) -> list[str]:
    with pytest.raises(CatalogError) as err:
        parse_catalog(text, "pipelines.toml")
    return str(err.value).splitlines()


@pytest.mark.parametrize("target, auth, connection", [
    ('workgroup = "analytics"', f'secret_arn = "{SECRET}"', {"SecretArn": SECRET, "WorkgroupName": "analytics"}),
    ('workgroup = "analytics"', "", {"WorkgroupName": "analytics"}),
    ('cluster = "reporting"', f'secret_arn = "{SECRET}"', {"SecretArn": SECRET, "ClusterIdentifier": "reporting"}),
    ('cluster = "reporting"', 'db_user = "loader"', {"DbUser": "loader", "ClusterIdentifier": "reporting"}),
    ('cluster = "reporting"', "", {"ClusterIdentifier": "reporting"}),
])
def test_each_valid_way_to_sign_in_reaches_the_data_api_as_configured(target: str, auth: str,
                                                                      connection: dict[str, str]) -> None:
    from chalicelib.adapters.warehouse import connection_params

    w = parse_catalog(warehouse(auth, target=target) + LOAD, "pipelines.toml").warehouses["main"]
    assert connection_params(w) == {"Database": "dev", **connection}


@pytest.mark.parametrize("target, auth, needles", [
    ('workgroup = "analytics"', 'db_user = "loader"', ["field 'db_user'", "clusters only", "secret_arn"]),
    ('cluster = "reporting"', f'secret_arn = "{SECRET}"\ndb_user = "loader"', ["field 'secret_arn'", "not both"]),
    ('cluster = "reporting"', 'secret_arn = "arn:aws:iam::123456789012:role/NotASecret"',
     ["field 'secret_arn'", "not a Secrets Manager ARN", "arn:aws:iam::123456789012:role/NotASecret"]),
])
def test_invalid_sign_in_combinations_name_file_warehouse_and_field(target: str, auth: str,
                                                                    needles: list[str]) -> None:
    (line,) = problems(warehouse(auth, target=target) + LOAD)
    assert line.startswith("pipelines.toml: warehouses 'main' field ")
    for needle in needles:
        assert needle in line


def test_a_password_pasted_as_the_secret_arn_is_refused_without_being_repeated() -> None:
    (line,) = problems(warehouse(f'secret_arn = "{PASSWORD}"') + LOAD)
    assert "warehouses 'main' field 'secret_arn'" in line and "never holds the password" in line
    assert PASSWORD not in line


@pytest.mark.parametrize("field", ["password", "Password", "db_password", "aws_secret_access_key",
                                   "aws_access_key_id", "access_key_id", "secret_access_key", "session_token",
                                   "aws_session_token", "secret", "credentials", "api-key", "private_key"])
def test_fields_named_like_credentials_are_refused_with_how_to_sign_in(field: str) -> None:
    (line,) = problems(warehouse(f'"{field}" = "{PASSWORD}"') + LOAD)
    assert line.startswith(f"pipelines.toml: warehouses 'main' field '{field}': ")
    assert "named like a credential" in line and "secret_arn" in line and "db_user" in line
    assert PASSWORD not in line and "unknown field" not in line


@pytest.mark.parametrize("option, keyword", [
    (f"CREDENTIALS 'aws_access_key_id={KEY_ID};aws_secret_access_key={SECRET_KEY}'", "CREDENTIALS"),
    ("CREDENTIALS 'aws_iam_role=arn:aws:iam::123456789012:role/RedshiftS3'", "CREDENTIALS"),
    (f"WITH CREDENTIALS AS 'aws_access_key_id={KEY_ID};aws_secret_access_key={SECRET_KEY}'", "CREDENTIALS"),
    (f"ACCESS_KEY_ID '{KEY_ID}'", "ACCESS_KEY_ID"),
    (f"secret_access_key '{SECRET_KEY}'", "SECRET_ACCESS_KEY"),
    (f"SESSION_TOKEN '{PASSWORD}'", "SESSION_TOKEN"),
])
def test_copy_options_other_than_iam_role_authorization_are_refused_without_the_keys(option: str,
                                                                                     keyword: str) -> None:
    (line,) = problems(warehouse() + LOAD + f'options = ["GZIP", "{option}"]\n')
    assert line.startswith("pipelines.toml: loads 'orders' field 'options': item 2: ")
    assert f"({keyword}) are not allowed" in line and "iam_role" in line
    for secret in (KEY_ID, SECRET_KEY, PASSWORD, "aws_iam_role="):
        assert secret not in line


@pytest.mark.parametrize("statement, needle", [
    (f"ALTER USER loader PASSWORD '{PASSWORD}'", "password"),
    (f"CALL ops.audit('{KEY_ID}')", "access key id"),
    (f"COPY t FROM 's3://b/k' ACCESS_KEY_ID '{KEY_ID}' SECRET_ACCESS_KEY '{SECRET_KEY}'", "ACCESS_KEY_ID"),
    (f"UNLOAD ('select 1') TO 's3://b/k' CREDENTIALS 'aws_secret_access_key={SECRET_KEY}'", "CREDENTIALS"),
])
def test_statements_carrying_credentials_are_refused(statement: str, needle: str) -> None:
    text = warehouse() + LOAD + f'post_load = ["{statement}"]\n'
    (line,) = problems(text)
    assert "loads 'orders' field 'post_load': item 1: " in line and needle in line
    for secret in (KEY_ID, SECRET_KEY, PASSWORD):
        assert secret not in line


@pytest.mark.parametrize("extra, where", [
    (f'database_url = "postgresql://loader:{PASSWORD}@host:5439/dev"', "warehouses 'main' field 'database_url'"),
    (f'note = "{{\\"username\\": \\"loader\\", \\"password\\": \\"{PASSWORD}\\"}}"', "warehouses 'main' field 'note'"),
])
def test_values_that_hold_a_password_are_refused_wherever_they_are(extra: str, where: str) -> None:
    (line,) = problems(warehouse(extra) + LOAD)
    assert where in line and "password" in line and PASSWORD not in line


def test_credentials_in_any_section_or_nesting_are_found(tmp_path) -> None:
    text = (warehouse() + LOAD + f'batch = {{ max_files = 5, password = "{PASSWORD}" }}\n'
            + f'[[dms_followups]]\nwarehouse = "main"\ntask = "t"\nsteps = ["CALL a(\'{KEY_ID}\')"]\n'
            + f'aws_access_key_id = "{KEY_ID}"\n')
    found = problems(text)
    assert any("loads 'orders' field 'batch.password'" in line for line in found)
    assert any("dms_followups #1 field 'steps': item 1: " in line and "access key id" in line for line in found)
    assert any("dms_followups #1 field 'aws_access_key_id'" in line for line in found)
    assert not any(s in line for line in found for s in (PASSWORD, KEY_ID))


def test_other_problems_are_still_reported_alongside() -> None:
    text = warehouse(f'password = "{PASSWORD}"', target='workgroup = "a"\ncluster = "b"') + LOAD.replace('"csv"',
                                                                                                       '"xml"')
    found = problems(text)
    assert any("field 'password'" in line for line in found)
    assert any("field 'workgroup'" in line and "exactly one" in line for line in found)
    assert any("field 'format'" in line and "'xml'" in line for line in found)


@pytest.mark.parametrize("text", [
    'post_load = ["CALL ops.reset_password_policy()", "CALL ops.refresh_credentials_cache()"]',
    'options = ["IGNOREHEADER 1"]\ncolumns = ["id", "access_key_hint"]',
])
def test_names_that_merely_mention_credentials_are_fine(text: str) -> None:
    parse_catalog(warehouse() + LOAD + text + "\n", "pipelines.toml")


def test_a_secret_whose_name_mentions_credentials_is_fine() -> None:
    arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:rs-credentials-XYZ"
    w = parse_catalog(warehouse(f'secret_arn = "{arn}"') + LOAD, "pipelines.toml").warehouses["main"]
    assert w.secret_arn == arn


def test_the_chalice_config_sets_no_credential_as_an_environment_variable() -> None:
    """Stage variables end up in each Lambda's configuration, readable by anyone who may view it."""
    import json
    from pathlib import Path

    from chalicelib.catalogsecrets import looks_like_credential

    config = json.loads((Path(__file__).resolve().parents[2] / ".chalice" / "config.json").read_text())
    layers = [config, *config.get("lambda_functions", {}).values()]
    for stage in config["stages"].values():
        layers += [stage, *stage.get("lambda_functions", {}).values()]
    variables = [(k, v) for layer in layers for k, v in layer.get("environment_variables", {}).items()]
    assert variables and not [(k, looks_like_credential(k, v)) for k, v in variables if looks_like_credential(k, v)]
    assert looks_like_credential("AWS_SECRET_ACCESS_KEY", "x") and looks_like_credential("X", KEY_ID)
