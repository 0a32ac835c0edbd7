"""The instance image: odoo.conf for containers, addon checks, Dockerfile, context digest, secret scan."""

import io
import json
import subprocess
import sys
import tarfile

import pytest
from ansible_collections.sysgenpro.odoo_migration.plugins.module_utils.odoo import discovery as _odoo_host
from ansible_collections.sysgenpro.odoo_migration.plugins.module_utils.odoo import image as _image
from ansible_collections.sysgenpro.odoo_migration.plugins.module_utils.odoo.image import ImageError


def test_render_config_fixes_data_dir_and_renders_values():
    text = _image.render_config(
        {
            "workers": 4,
            "proxy_mode": True,
            "list_db": False,
            "server_wide_modules": ["base", "web"],
            "skipped": None,
        }
    )
    lines = text.splitlines()
    assert lines[:2] == ["[options]", "data_dir = /var/lib/odoo"]
    assert "proxy_mode = True" in lines and "list_db = False" in lines
    assert "server_wide_modules = base,web" in lines and "workers = 4" in lines
    assert "skipped" not in text and text.endswith("\n")


def test_render_config_refuses_secrets_and_names_them():
    with pytest.raises(ImageError) as error:
        _image.render_config({"admin_passwd": "x", "db_password": "y", "workers": 2})
    assert "admin_passwd, db_password" in str(error.value)
    assert "'x'" not in str(error.value) and "= y" not in str(error.value)


@pytest.mark.parametrize("option", ["db_host", "data_dir"])
def test_render_config_refuses_deployment_options(option):
    with pytest.raises(ImageError, match=option):
        _image.render_config({option: "somewhere"})


def _addon(tmp_path, name="acme_sale"):
    path = tmp_path / name
    path.mkdir()
    (path / "__manifest__.py").write_text("{'name': 'Acme'}\n")
    (path / "models.py").write_text("x = 1\n")
    return path


def test_verify_addons_accepts_the_discovered_checksum(tmp_path):
    path = _addon(tmp_path)
    _image.verify_addons(
        [{"name": "acme_sale", "path": str(path), "checksum": _odoo_host.tree_checksum(str(path))}]
    )


def test_verify_addons_rejects_a_changed_addon(tmp_path):
    path = _addon(tmp_path)
    checksum = _odoo_host.tree_checksum(str(path))
    (path / "models.py").write_text("x = 2\n")
    with pytest.raises(ImageError, match="acme_sale"):
        _image.verify_addons([{"name": "acme_sale", "path": str(path), "checksum": checksum}])


def test_verify_addons_rejects_a_directory_without_manifest(tmp_path):
    path = tmp_path / "no_manifest"
    path.mkdir()
    with pytest.raises(ImageError, match=r"no_manifest: .* holds no __manifest__.py"):
        _image.verify_addons([{"name": "no_manifest", "path": str(path), "checksum": "sha256:0"}])


def _final_stage(text):
    return text[text.rindex("\nFROM ") :]


def test_dockerfile_without_requirements_has_one_stage():
    text = _image.dockerfile("odoo@sha256:abc", "101:102", {}, [], has_ca_bundle=True)
    assert "python-deps" not in text and "pip-ca-bundle" not in text
    assert text.count("\nFROM ") == 1 and "FROM odoo@sha256:abc\n" in text


def test_dockerfile_installs_requirements_in_a_throwaway_stage():
    text = _image.dockerfile("odoo:17", "101:102", {}, ["requests==2.31.0"], has_ca_bundle=True)
    assert "FROM odoo:17 AS python-deps" in text and text.count("\nFROM ") == 2
    assert text.index("pip-ca-bundle") < text.rindex("\nFROM ")
    final = _final_stage(text)
    assert "pip-ca-bundle" not in final and "PIP_CERT" not in final
    assert "COPY --from=python-deps /opt/odoo-extra-python /opt/odoo-extra-python" in final


def test_dockerfile_without_ca_bundle_never_mentions_it():
    text = _image.dockerfile("odoo:17", "101:102", {}, ["requests==2.31.0"], has_ca_bundle=False)
    assert "pip-ca-bundle" not in text and "python-deps" in text


def test_dockerfile_runs_as_the_given_user_and_quotes_labels():
    labels = {
        "org.sysgenpro.odoo-migration.instance": 'acme "prod"',
        "org.sysgenpro.odoo-migration.series": 17.0,
    }
    text = _image.dockerfile("odoo:17", "101:102", labels, [], has_ca_bundle=False)
    users = [line for line in text.splitlines() if line.startswith("USER ")]
    assert users[-1] == "USER 101:102"
    assert text.rindex("USER 101:102") > text.rindex("USER root")
    assert "install -d -o 101 -g 102" in text
    assert 'LABEL org.sysgenpro.odoo-migration.instance="acme \\"prod\\""' in text
    assert 'LABEL org.sysgenpro.odoo-migration.series="17.0"' in text


def _context(directory):
    (directory / "addons" / "acme").mkdir(parents=True)
    (directory / "addons" / "acme" / "__manifest__.py").write_text("{}\n")
    (directory / "Dockerfile").write_text("FROM odoo\n")
    (directory / "odoo.conf").write_text("[options]\n")
    return directory


def test_context_digest_is_stable_for_the_same_content(tmp_path):
    one, two = _context(tmp_path / "one"), _context(tmp_path / "two")
    assert _image.context_digest(str(one), "sha256:base") == _image.context_digest(str(two), "sha256:base")


def test_context_digest_follows_files_and_base_image(tmp_path):
    directory = _context(tmp_path / "ctx")
    before = _image.context_digest(str(directory), "sha256:base")
    assert _image.context_digest(str(directory), "sha256:other") != before
    (directory / "odoo.conf").write_text("[options]\nworkers = 2\n")
    assert _image.context_digest(str(directory), "sha256:base") != before


def test_context_digest_ignores_the_ca_bundle(tmp_path):
    directory = _context(tmp_path / "ctx")
    before = _image.context_digest(str(directory), "sha256:base")
    (directory / "pip-ca-bundle.crt").write_text("-----BEGIN CERTIFICATE-----\n")
    assert _image.context_digest(str(directory), "sha256:base") == before


def _tar_bytes(files):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for name, content in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(content)
            archive.addfile(info, io.BytesIO(content))
    return buffer.getvalue()


def _saved_image(tmp_path, config=b'{"config": {"Env": ["PATH=/usr/bin"]}}', top_layer=None):
    layers = {
        "base/layer.tar": _tar_bytes({"etc/os-release": b"ID=debian\n"}),
        "top/layer.tar": _tar_bytes(top_layer or {"etc/odoo/odoo.conf": b"[options]\n"}),
    }
    manifest = json.dumps([{"Config": "config.json", "Layers": list(layers)}]).encode()
    path = tmp_path / "image.tar"
    path.write_bytes(_tar_bytes({"manifest.json": manifest, "config.json": config, **layers}))
    return str(path)


def test_scan_finds_a_secret_in_an_added_layer_without_revealing_it(tmp_path):
    secret = "s3cr3t-db-password"
    archive = _saved_image(tmp_path, top_layer={"etc/odoo/odoo.conf": f"db_password = {secret}\n".encode()})
    layers, files, findings = _image.scan_saved_image(archive, 1, ["", secret])
    assert (layers, files) == (1, 1)
    assert findings == ["top/layer.tar:/etc/odoo/odoo.conf: secret #2"]
    assert secret not in repr(findings)


def test_scan_skips_the_base_layers(tmp_path):
    secret = "s3cr3t-db-password"
    archive = _saved_image(tmp_path, top_layer={"etc/odoo/odoo.conf": secret.encode()})
    assert _image.scan_saved_image(archive, 2, [secret]) == (0, 0, [])


def test_scan_searches_the_image_config(tmp_path):
    secret = "s3cr3t-db-password"
    archive = _saved_image(
        tmp_path, config=json.dumps({"config": {"Env": ["PGPASSWORD=" + secret]}}).encode()
    )
    _, _, findings = _image.scan_saved_image(archive, 2, [secret])
    assert len(findings) == 1 and findings[0].startswith("image config")
    assert secret not in findings[0]


def test_a_clean_scan_is_reused_only_for_the_same_image_and_secrets(tmp_path):
    record = _image.ScanRecord(str(tmp_path), "sha256:abc", ["db-pass", "admin-pass"])
    assert record.clean_scan() is None
    record.keep(3, 1200)
    assert _image.ScanRecord(str(tmp_path), "sha256:abc", ["admin-pass", "db-pass"]).clean_scan() == (
        3,
        1200,
        [],
    )
    # Another secret (rotated), or another image: scanned again.
    assert _image.ScanRecord(str(tmp_path), "sha256:abc", ["db-pass", "new-admin-pass"]).clean_scan() is None
    assert _image.ScanRecord(str(tmp_path), "sha256:def", ["db-pass", "admin-pass"]).clean_scan() is None
    kept = (tmp_path / "scans" / "sha256_abc.json").read_text()
    assert "db-pass" not in kept and "admin-pass" not in kept


def _addon_with_dependencies(root, name, python_dependencies):
    (root / name).mkdir(parents=True)
    manifest = {"name": name, "external_dependencies": {"python": python_dependencies}}
    (root / name / "__manifest__.py").write_text(repr(manifest))


def run_module_probe(tmp_path, modules):
    """MODULE_PROBE as the image runs it: python3 -c, an odoo.conf naming the addons path, module names."""
    config = tmp_path / "odoo.conf"
    config.write_text("[options]\naddons_path = %s\n" % (tmp_path / "addons"))
    run = subprocess.run(
        [sys.executable, "-c", _image.MODULE_PROBE, str(config), *modules],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(run.stdout)


def test_module_probe_names_absent_modules_and_unimportable_dependencies(tmp_path):
    _addon_with_dependencies(tmp_path / "addons", "auth_ldap", ["json", "no-such-package-anywhere"])
    _addon_with_dependencies(tmp_path / "addons", "sale_extra", ["pytest"])
    report = run_module_probe(tmp_path, ["auth_ldap", "sale_extra", "gone_module"])
    assert report == {"absent": ["gone_module"], "missing": {"auth_ldap": ["no-such-package-anywhere"]}}


def test_module_problems_name_the_module_its_database_and_the_package():
    report = {"absent": ["gone_module"], "missing": {"auth_ldap": ["python-ldap"]}}
    problems = _image.module_problems(
        report, {"acme": ["base", "auth_ldap"], "globex": ["base", "gone_module"]}
    )
    assert problems == [
        "module auth_ldap (installed in database acme) needs the Python package(s) python-ldap, "
        "which the image cannot import",
        "database globex has modules installed that the image does not have: gone_module",
    ]
    assert _image.module_problems({"absent": [], "missing": {}}, {"acme": ["base"]}) == []
