"""AWX credential types: their injectors feed variables the roles read, and every secret is marked secret."""

import re
import sys
from pathlib import Path

from jinja2 import meta
from jinja2.sandbox import ImmutableSandboxedEnvironment

REPO = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(REPO / "tests"))
import awx_job  # noqa: E402

SECRET_INPUT = re.compile(r"password|secret|cipher")


def credential_types():
    return list(awx_job.credential_types().values())


def role_defaults_text():
    return "\n".join(path.read_text() for path in (REPO / "roles").glob("*/defaults/main.yml"))


def test_every_injected_variable_is_one_a_role_reads():
    defaults = role_defaults_text()
    unread = [
        name
        for credential_type in credential_types()
        for name in credential_type["injectors"].get("extra_vars", {})
        if not re.search(rf"\b{re.escape(name)}\b", defaults)
    ]
    assert unread == []


def test_injectors_use_only_declared_inputs_and_awx_injector_kinds():
    for credential_type in credential_types():
        assert set(credential_type["injectors"]) <= {"file", "env", "extra_vars"}
        assert credential_type["kind"] == "cloud"
        ids = [field["id"] for field in credential_type["inputs"]["fields"]]
        assert len(ids) == len(set(ids))
        assert set(credential_type["inputs"]["required"]) <= set(ids)
        environment = ImmutableSandboxedEnvironment()
        used = set()
        for template in credential_type["injectors"]["extra_vars"].values():
            used |= meta.find_undeclared_variables(environment.parse(template))
        assert used <= set(ids), credential_type["name"]


def test_every_secret_input_is_secret_and_never_an_environment_variable():
    for credential_type in credential_types():
        secret_ids = {field["id"] for field in credential_type["inputs"]["fields"] if field.get("secret")}
        for field in credential_type["inputs"]["fields"]:
            if SECRET_INPUT.search(field["id"]):
                assert field["id"] in secret_ids, f"{credential_type['name']}: {field['id']} is not secret"
        for value in credential_type["injectors"].get("env", {}).values():
            assert not any(secret in value for secret in secret_ids)


def test_the_object_storage_injector_falls_back_to_the_backup_keys_for_the_filestore():
    (storage,) = [item for item in credential_types() if item["name"] == "Odoo migration object storage"]
    injected = awx_job.injected_extra_vars(
        storage, {"backup_access_key": "AK", "backup_secret_key": "SK", "cipher_pass": ""}
    )
    assert injected == {
        "odoo_migration_backup_s3_access_key": "AK",
        "odoo_migration_backup_s3_secret_key": "SK",
        "odoo_migration_backup_cipher_pass": "",
        "odoo_migration_filestore_backup_s3_access_key": "AK",
        "odoo_migration_filestore_backup_s3_secret_key": "SK",
    }
