"""The execution environment: ansible-builder makes its build context from awx/execution-environment.yml and
finds in the built collection the requirements the collection's code imports."""

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[3]
BIN = Path(sys.executable).parent
# Imports of the collection's code that neither Python nor ansible-core provides, and their pip names.
THIRD_PARTY = {"boto3": "boto3", "botocore": "boto3", "psycopg": "psycopg"}


def requirement_names(lines):
    return {re.split(r"[\[<>=; #]", line.strip(), maxsplit=1)[0].lower() for line in lines if line.strip()}


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """The collection tarball (tests/build_collection.sh), installed where ansible-builder looks into it."""
    subprocess.run(["bash", str(REPO / "tests" / "build_collection.sh")], check=True, capture_output=True)
    (tarball,) = (REPO / ".build" / "dist").glob("sysgenpro-odoo_migration-*.tar.gz")
    installed = tmp_path_factory.mktemp("collections")
    subprocess.run(
        [BIN / "ansible-galaxy", "collection", "install", "--force", "--no-deps", "-p", installed, tarball],
        check=True,
        capture_output=True,
    )
    return tarball, installed


def test_the_build_context_carries_this_version_of_the_collection_and_the_pinned_ansible(built, tmp_path):
    tarball, _installed = built
    version = yaml.safe_load((REPO / "galaxy.yml").read_text())["version"]
    assert tarball.name == f"sysgenpro-odoo_migration-{version}.tar.gz"
    context = tmp_path / "context"
    subprocess.run(
        [BIN / "ansible-builder", "create", "-f", REPO / "awx" / "execution-environment.yml", "-c", context],
        check=True,
        capture_output=True,
    )
    assert (context / "_build" / "collections" / tarball.name).is_file()
    galaxy = yaml.safe_load((context / "_build" / "requirements.yml").read_text())
    assert galaxy["collections"] == [{"name": f"/build/collections/{tarball.name}", "type": "file"}]
    (build_file,) = [path for path in context.iterdir() if path.name in ("Containerfile", "Dockerfile")]
    pinned = re.search(r"^ansible-core==\S+", (REPO / "requirements.txt").read_text(), re.M).group(0)
    assert f'ARG ANSIBLE_INSTALL_REFS="{pinned} ' in build_file.read_text()


def test_ansible_builder_finds_what_the_collections_code_imports(built):
    _tarball, installed = built
    run = subprocess.run(
        [BIN / "ansible-builder", "introspect", "--sanitize", installed],
        check=True,
        capture_output=True,
        text=True,
    )
    found = yaml.safe_load(run.stdout.split("\n", 1)[1])
    declared = (REPO / "meta" / "ee-requirements.txt").read_text().splitlines()
    assert requirement_names(found["python"]) == requirement_names(declared)
    assert any(line.startswith("postgresql-client") for line in found["system"])
    imported = set()
    for path in (REPO / "plugins").rglob("*.py"):
        imported |= set(re.findall(r"^\s*(?:import|from) ([a-z0-9_]+)", path.read_text(), re.M))
    needed = {THIRD_PARTY[name] for name in imported & set(THIRD_PARTY)}
    assert needed <= requirement_names(found["python"])
