#!/usr/bin/env bash
# ansible-test sanity on the collection as it is built (ansible-test needs the tree at
# ansible_collections/<namespace>/<name>), for this machine's Python only.
set -euo pipefail
cd "$(dirname "$0")/../.."
repo="$(pwd)"

# ansible-test seeds pip into its venvs with a get-pip.py it downloads from a host that
# is out of reach here; give it the offline stand-in under every pip version it may ask for.
pip_versions="$(python -c "import inspect, re; import ansible_test._internal.python_requirements as r; \
print(' '.join(sorted(set(re.findall(r\"pip='([0-9.]+)'\", inspect.getsource(r))))))")"
[ -n "$pip_versions" ] || { echo "sanity: cannot tell which pip ansible-test bootstraps" >&2; exit 1; }
mkdir -p ~/.ansible/test/cache
for version in $pip_versions; do
  cp "$repo/tests/sanity/get_pip_offline.py" ~/.ansible/test/cache/get_pip_${version//./_}.py
done

bash tests/build_collection.sh >/dev/null
root=.build/sanity
rm -rf "$root" && mkdir -p "$root"
ansible-galaxy collection install --no-deps --force -p "$root" .build/dist/sysgenpro-odoo_migration-*.tar.gz >/dev/null
cd "$root/ansible_collections/sysgenpro/odoo_migration"
python_version="$(python -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
git init -q . && git add -A
ansible-test sanity --local --python "$python_version" --color no --requirements "$@"
