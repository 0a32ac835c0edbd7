#!/usr/bin/env bash
# Turns the packaged Odoo of the legacy-vm image into a source install, as an admin
# following the usual "install Odoo from source" guide would have left it.
set -euo pipefail

build=/tmp/lab-build
packaged=/usr/lib/python3/dist-packages/odoo
src=/opt/odoo/src

# 1. The source tree: odoo/ with only `base` in odoo/addons, every other addon in addons/
#    (upstream's layout), the odoo-bin launcher, one git commit.
install -d -o erp -g erp -m 0755 /opt/odoo "$src" "$src/addons"
cp -a "$packaged" "$src/odoo"
find "$src/odoo" -name __pycache__ -type d -prune -exec rm -rf {} +
for addon in "$src"/odoo/addons/*/; do
  [ "$(basename "$addon")" = base ] || mv "$addon" "$src/addons/"
done
install -m 0755 "$build/odoo-bin" "$src/odoo-bin"
printf '__pycache__/\n*.py[co]\n' >"$src/.gitignore"
export GIT_AUTHOR_NAME="Globex ERP admin" GIT_AUTHOR_EMAIL="erp-admin@globex.lab.internal"
export GIT_COMMITTER_NAME="$GIT_AUTHOR_NAME" GIT_COMMITTER_EMAIL="$GIT_AUTHOR_EMAIL"
export GIT_AUTHOR_DATE="2025-10-01T09:00:00Z" GIT_COMMITTER_DATE="2025-10-01T09:00:00Z"
git_src() { git -c safe.directory="$src" -C "$src" "$@"; }
git_src init -q -b 19.0
git_src add -A
git_src commit -q -m "Odoo 19.0 (community), as deployed for Globex and Initech"

# 2. Custom addons: the lab's trap addon (from the packaged layout) next to lab_erp_extras.
install -d -o erp -g erp -m 0755 /opt/odoo/custom /opt/odoo/custom/addons
cp -a /opt/odoo/custom-addons/lab_legacy_traps /opt/odoo/custom/addons/
rm -rf /opt/odoo/custom-addons
chown -R erp:erp "$src" /opt/odoo/custom

# 3. Purge the package; its dependencies (Python libraries, the fonts and JavaScript the
#    tree links to) stay, marked as installed on purpose.
deps="$(dpkg-query -W -f='${Depends}' odoo-19 | tr ',|' '\n\n' | sed -E 's/\(.*\)//; s/:any//; s/[[:space:]]//g' | sort -u)"
keep=()
for package in $deps; do
  if [ "$(dpkg-query -W -f='${db:Status-Abbrev}' "$package" 2>/dev/null)" = "ii " ]; then
    keep+=("$package")
  fi
done
apt-mark manual "${keep[@]}" >/dev/null
systemctl disable odoo.service >/dev/null 2>&1 || true
apt-get purge -y -q odoo-19 >/dev/null
rm -f /var/cache/apt/*.bin
rm -rf /usr/lib/python3/dist-packages/odoo /usr/lib/python3/dist-packages/addons /etc/odoo
left="$(dpkg-query -W -f='${db:Status-Abbrev} ${Package}\n' '*odoo*' 2>/dev/null | awk 'substr($1, 2, 1) != "n"' || true)"
if [ -n "$left" ]; then
  echo "an odoo package is still installed: $left" >&2
  exit 1
fi
for unit in /etc/systemd/system/odoo.service /usr/lib/systemd/system/odoo.service /lib/systemd/system/odoo.service \
  /etc/systemd/system/multi-user.target.wants/odoo.service /etc/init.d/odoo; do
  if [ -e "$unit" ] || [ -L "$unit" ]; then
    echo "$unit survived the purge" >&2
    exit 1
  fi
done

# 4. The instance's own directories.
install -d -o erp -g erp -m 0750 /srv/odoo-erp /srv/odoo-erp/data /var/log/odoo-erp
install -d -m 0755 /etc/odoo-erp

# 5. PostgreSQL 17 on port 5433. Odoo's database role is `odoo` (the usual name, as on the
#    packaged VM), reached by the OS user erp through a peer map over the socket.
sed -i -E 's/^port = 5432\b/port = 5433/' /etc/postgresql/17/main/postgresql.conf
grep -q '^port = 5433' /etc/postgresql/17/main/postgresql.conf
echo 'odoo_erp        erp                     odoo' >> /etc/postgresql/17/main/pg_ident.conf
sed -i -E 's/^(local\s+all\s+all\s+peer)/local   all             odoo                                    peer map=odoo_erp\n\1/' \
  /etc/postgresql/17/main/pg_hba.conf
grep -q '^local   all             odoo .*map=odoo_erp' /etc/postgresql/17/main/pg_hba.conf
pg_ctlcluster 17 main start
runuser -u postgres -- dropuser --port=5433 --if-exists odoo
runuser -u postgres -- createuser --port=5433 --createdb --no-superuser --no-createrole odoo
pg_ctlcluster 17 main stop

# 6. The venv must import the tree and the addon's dependency it was built for.
export PYTHONDONTWRITEBYTECODE=1
version="$(runuser -u erp -- /opt/odoo/venv/bin/python3 "$src/odoo-bin" --version)"
[[ "$version" == "Odoo Server 19."* ]] || { echo "odoo-bin in the venv says: $version" >&2; exit 1; }
runuser -u erp -- /opt/odoo/venv/bin/python3 -c 'import humanize' \
  || { echo "the venv cannot import humanize" >&2; exit 1; }
if /usr/bin/python3 -c 'import humanize' 2>/dev/null; then
  echo "humanize must come from the venv only" >&2
  exit 1
fi
