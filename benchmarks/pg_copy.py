"""The copy engine against its peers on the same Odoo-shaped database, and cutover unavailability.

One run, one isolated PostgreSQL 17 -> 18 pair (tests/integration/pg_pair.py, containers
`odoo-mig-engine-{src,tgt}-bench`, 127.0.0.1:5491/5492, network `odoo-mig-engine-bench`),
its source database `shop` loaded from the lab's `acme` (needs `make lab-up`).

    .venv/bin/python benchmarks/pg_copy.py --sizes 300,4500
Needs the tools image first (Debian's pgcopydb on the target image; sid's Release file may be
expired, hence the option):
    printf 'FROM %s\nRUN apt-get -o Acquire::Check-Valid-Until=false update && apt-get -o \
    Acquire::Check-Valid-Until=false install -y --no-install-recommends pgcopydb\n\
    ENV PATH=/usr/lib/postgresql/18/bin:$PATH\n' "$(docker images odoo-mig/target-postgres \
    --format '{{.Repository}}:{{.Tag}}' | head -1)" | docker build -t odoo-mig/pgcopydb-bench:local -
Writes benchmarks/results/pg_copy.{json,md}. On 2 CPUs, --sizes 300,2000 took about 11 minutes
(pair start 1, growth 3, copies 4, five cutovers 2.5); larger sizes grow roughly linearly.
Each contender's CPU seconds (containers' cgroups, controller's children) and target WAL
are recorded too: the machine may be shared, and CPU seconds are less noisy than wall time.

Dataset. `shop` is grown in place, in an Odoo-shaped way: the business tables are
multiplied with `INSERT ... SELECT` of their own rows, the integer id shifted by
(max - min + 1) so primary keys stay unique, until each table reaches its share of the
requested size (GROWTH below: mail_message 30 %, ir_attachment 12 %, sale_order_line 12 %,
lab_audit_log 12 %, mail_tracking_value 10 %, res_partner 8 %, lab_document 6 %,
sale_order 5 %, counted with indexes and TOAST); ir_attachment copies lose their
`store_fname`/`checksum` (rows without files). Foreign keys keep pointing at existing rows.
Every owned sequence is then set to max(id). The fixed Odoo catalog (ir_model_data,
ir_ui_view, ...) stays as loaded. The sizes are grown in increasing order on the same
database.

Contenders, each into a fresh empty database on the same target server, 4 jobs each:
  ours        pg_logical_migration state=replicating through ansible-playbook (as
              tests/integration/test_pg_replication.py runs it), wall clock from start to
              the subscription created; its steps give the copy and post-data phases. It
              reaches the servers at their bridge addresses, as the peers' container does
              (--via-published-ports: through 127.0.0.1 and docker-proxy instead).
  dump        pg_dump -Fd -j4 then pg_restore -j4 (PostgreSQL 18 binaries in a tools
              container on the pair's network; the dump directory on its overlay disk).
  pgcopydb    pgcopydb clone --table-jobs 4 --index-jobs 4 (Debian's package, in a tools
              image built FROM odoo-mig/target-postgres; `--dir` on its overlay disk).
After each contender its database is dropped (and, for ours, state=absent).

Cutover: on the smallest size, N times: a fresh target database by pg_logical_migration,
a writer inserting every 20 ms as the application role `odoo` on the source (switching
to the target as soon as pg_cutover returns, as an application would), then pg_cutover's
engine (`_cutover.run_cutover`, called in-process so the writer's switch is not delayed
by ansible's exit), then pg_migration_finalize's engine and a drop of the target database.
Reported: the module's write_unavailable_seconds, the longest interval between two
acknowledged commits seen by the writer, and lost commits (acknowledged, absent on the
target afterwards).

Options: --jobs (4), --cutovers (5), --state-dir DIR with --reuse (keep using a pair
started before, e.g. with --keep), --skip-copy, --skip-cutover, --no-pgcopydb.
"""

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
os.environ.setdefault("ODOO_MIG_PAIR_SUFFIX", "-bench")
os.environ.setdefault("ODOO_MIG_PAIR_PORT_BASE", "5490")
sys.path.insert(0, str(REPO / "tests" / "integration"))
sys.path.insert(0, str(REPO / ".build" / "collections"))

import pg_pair as pp  # noqa: E402
import psycopg  # noqa: E402
from ansible_collections.sysgenpro.odoo_migration.plugins.module_utils.postgres import (  # noqa: E402
    connection as _pg,
)
from ansible_collections.sysgenpro.odoo_migration.plugins.module_utils.postgres import (  # noqa: E402
    cutover as _cutover,
)

TOOLS_IMAGE = "odoo-mig/pgcopydb-bench:local"
TOOLS = "odoo-mig-bench-tools" + pp.SUFFIX
SRC_HOST, TGT_HOST = pp.SIDES["src"]["container"], pp.SIDES["tgt"]["container"]
APP_ROLE = "odoo"
APP_PASSWORD = "bench-app-" + os.urandom(6).hex()
# table -> (share of the grown bytes, column overrides for the copies)
GROWTH = {
    "mail_message": (0.30, {}),
    "ir_attachment": (0.12, {"store_fname": "NULL", "checksum": "NULL"}),
    "sale_order_line": (0.12, {}),
    "lab_audit_log": (0.12, {}),
    "mail_tracking_value": (0.10, {}),
    "res_partner": (0.08, {}),
    "lab_document": (0.06, {}),
    "sale_order": (0.05, {}),
}
MIB = 1024 * 1024
NOTES = [
    "All servers share one 2-CPU machine: 4 jobs on each side oversubscribe it, so these numbers "
    "measure CPU efficiency more than parallel scaling.",
    "The source's data is in the page cache for every contender (23 GiB RAM); the order is ours, "
    "dump/restore, pgcopydb, the same for each size.",
    "Ours does more than the peers: it also creates the slot and the subscription; its total includes "
    "ansible-playbook's start-up (about 2 s) and an ANALYZE of every table. pg_restore runs no ANALYZE; "
    "pgcopydb runs VACUUM ANALYZE.",
    "Addresses: pg_dump/pg_restore and pgcopydb run in a tools container on the pair's Docker network "
    "and reach the servers directly; ours runs on the host (the controller) and, unless "
    "--via-published-ports, reaches the servers at their bridge addresses too, not through "
    "127.0.0.1's published ports, where docker-proxy would copy every byte twice more on the same "
    "CPUs (about 20 % slower copy in a 668 MiB, 4-stream test).",
    f"pgcopydb: Debian's package (sid, 0.18), installed in {TOOLS_IMAGE}, an image built FROM "
    "odoo-mig/target-postgres with `apt-get -o Acquire::Check-Valid-Until=false install pgcopydb` "
    "(sid's Release file had expired) and PATH=/usr/lib/postgresql/18/bin first.",
    "Found while writing this benchmark, both fixed since: pg_logical_migration's default slot "
    "name was odoo_migration where pg_cutover looks for odoo_migration_<database> (now the "
    "default of both); pg_cutover's reverse publication FOR ALL TABLES includes the target's "
    "copy bookkeeping (odoo_migration.copy_state/copy_progress), which pg_cutover now also "
    "creates on the source. The benchmark still drops them before its cutovers.",
]


def log(text):
    print(time.strftime("%H:%M:%S"), text, flush=True)


def connect(pair, side, dbname=pp.DATABASE, **extra):
    return psycopg.connect(autocommit=True, **dict(pair.endpoint(side, dbname), **extra))


# -- dataset ---------------------------------------------------------------------------


def _columns(conn, table):
    rows = conn.execute(
        "SELECT a.attname FROM pg_attribute a WHERE a.attrelid = %s::regclass AND a.attnum > 0 "
        "AND NOT a.attisdropped AND a.attgenerated = '' ORDER BY a.attnum",
        (table,),
    ).fetchall()
    return [r[0] for r in rows]


def _id_column(conn, table):
    row = conn.execute(
        "SELECT a.attname FROM pg_constraint c JOIN pg_attribute a ON a.attrelid = c.conrelid "
        "AND a.attnum = c.conkey[1] WHERE c.conrelid = %s::regclass AND c.contype = 'p' "
        "AND array_length(c.conkey, 1) = 1",
        (table,),
    ).fetchone()
    return row[0] if row else None


def grow(pair, target_mib):
    """Grow shop's business tables to their shares of target_mib; return the database size."""
    with connect(pair, "src") as conn:
        size = conn.execute("SELECT pg_database_size(current_database())").fetchone()[0]
        fixed = size - sum(
            conn.execute("SELECT pg_total_relation_size(%s::regclass)", (t,)).fetchone()[0] for t in GROWTH
        )
        budget = max(0, target_mib * MIB - fixed)
        for table, (share, overrides) in GROWTH.items():
            goal = int(budget * share)
            cols = _columns(conn, table)
            id_col = _id_column(conn, table)
            started = time.monotonic()
            while True:
                have = conn.execute("SELECT pg_total_relation_size(%s::regclass)", (table,)).fetchone()[0]
                if have >= goal:
                    break
                count, lo, hi = conn.execute(
                    f"SELECT count(*), min({id_col}), max({id_col}) FROM {table}"
                    if id_col
                    else f"SELECT count(*), 0, 0 FROM {table}"
                ).fetchone()
                if not count:
                    break
                add = max(1, min(count, int(count * (goal - have) / have) + 1))
                select = []
                for col in cols:
                    if col == id_col:
                        select.append(f"{col} + {hi - lo + 1}")
                    else:
                        select.append(overrides.get(col, col))
                order = f" ORDER BY {id_col}" if id_col else ""
                conn.execute(
                    f"INSERT INTO {table} ({', '.join(cols)}) SELECT {', '.join(select)} FROM {table}"
                    f"{order} LIMIT {add}"
                )
            log(f"  {table}: {have // MIB} MiB ({time.monotonic() - started:.1f}s)")
        conn.execute(
            """DO $$DECLARE r record; m bigint; BEGIN
              FOR r IN SELECT s.oid::regclass AS seq, t.oid::regclass AS tbl, a.attname AS col
                FROM pg_class s JOIN pg_depend d ON d.objid = s.oid AND d.deptype = 'a'
                JOIN pg_class t ON t.oid = d.refobjid JOIN pg_attribute a ON a.attrelid = t.oid
                AND a.attnum = d.refobjsubid WHERE s.relkind = 'S' LOOP
                EXECUTE format('SELECT max(%I) FROM %s', r.col, r.tbl) INTO m;
                IF m IS NOT NULL THEN PERFORM setval(r.seq, m); END IF;
              END LOOP; END$$"""
        )
        conn.execute("VACUUM ANALYZE")
        conn.execute("CHECKPOINT")
        return conn.execute("SELECT pg_database_size(current_database())").fetchone()[0]


def dataset_facts(pair):
    with connect(pair, "src") as conn:
        size = conn.execute("SELECT pg_database_size(current_database())").fetchone()[0]
        tables = conn.execute(
            "SELECT relname, n_live_tup, pg_total_relation_size(relid) FROM pg_stat_user_tables "
            "ORDER BY 3 DESC LIMIT 8"
        ).fetchall()
        rows = conn.execute("SELECT sum(n_live_tup) FROM pg_stat_user_tables").fetchone()[0]
    return {
        "database_mib": round(size / MIB),
        "rows": int(rows),
        "largest_tables": [{"table": t, "rows": n, "mib": round(b / MIB, 1)} for t, n, b in tables],
    }


# -- contenders ------------------------------------------------------------------------


def _cgroup_cpu_file(container):
    """The file holding a container's CPU time (cgroup v1 or v2), or None."""
    cid = pp.docker("inspect", "-f", "{{.Id}}", container, check=False).stdout.strip()
    for path in (
        f"/sys/fs/cgroup/cpuacct/docker/{cid}/cpuacct.usage",
        f"/sys/fs/cgroup/system.slice/docker-{cid}.scope/cpu.stat",
        f"/sys/fs/cgroup/docker/{cid}/cpu.stat",
    ):
        if cid and Path(path).exists():
            return Path(path)
    return None


def _cpu_seconds(path):
    if path is None:
        return None
    text = path.read_text()
    if path.name == "cpuacct.usage":
        return int(text) / 1e9
    return int(next(line.split()[1] for line in text.splitlines() if line.startswith("usage_usec"))) / 1e6


class Meter:
    """CPU seconds of the source, target and tools containers and of the controller's child
    processes, and the target's WAL, over one contender: on a machine shared with other
    work, CPU seconds say more about efficiency than wall clock does."""

    def __init__(self, pair):
        self.pair = pair
        self.files = {"source": SRC_HOST, "target": TGT_HOST, "tools": TOOLS}
        self.files = {k: _cgroup_cpu_file(v) for k, v in self.files.items()}

    def _sample(self):
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = {k: _cpu_seconds(f) for k, f in self.files.items()}
        cpu["controller"] = usage.ru_utime + usage.ru_stime
        wal = int(self.pair.scalar("tgt", "SELECT pg_current_wal_lsn() - '0/0'", dbname="postgres"))
        return cpu, wal

    def __enter__(self):
        self.load = round(os.getloadavg()[0], 2)
        self.start = self._sample()
        return self

    def __exit__(self, *exc):
        cpu, wal = self._sample()
        before = self.start[0]
        self.cpu = {k: round(cpu[k] - before[k], 1) for k in cpu if None not in (cpu[k], before[k])}
        self.cpu["total"] = round(sum(self.cpu.values()), 1)
        self.wal_mib = (wal - self.start[1]) // MIB
        return False

    def facts(self):
        return {"cpu_seconds": self.cpu, "target_wal_mib": self.wal_mib, "loadavg_1min_at_start": self.load}


def ansible_env():
    return dict(
        os.environ,
        ANSIBLE_CONFIG=str(REPO / "ansible.cfg"),
        ANSIBLE_STDOUT_CALLBACK="ansible.posix.json",
        ANSIBLE_LOAD_CALLBACK_PLUGINS="1",
        ANSIBLE_PYTHON_INTERPRETER=sys.executable,
    )


def run_module(state_dir, module, args, timeout=3600):
    path = Path(state_dir) / f"play-{module}-{time.monotonic_ns()}.yml"
    play = [
        {"hosts": "localhost", "gather_facts": False, "tasks": [{f"sysgenpro.odoo_migration.{module}": args}]}
    ]
    path.write_text(json.dumps(play))
    os.chmod(path, 0o600)
    command = [str(Path(sys.executable).with_name("ansible-playbook")), "-i", "localhost,", "-c", "local"]
    run = subprocess.run(
        [*command, str(path)],
        cwd=REPO,
        env=ansible_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    path.unlink()
    try:
        result = json.loads(run.stdout)["plays"][0]["tasks"][0]["hosts"]["localhost"]
    except (json.JSONDecodeError, KeyError, IndexError):
        sys.exit(
            f"{module}: ansible printed no result (rc={run.returncode}): "
            f"{run.stdout[-2000:]} {run.stderr[-2000:]}"
        )
    if result.get("failed"):
        sys.exit(f"{module} failed: {result.get('msg')}")
    return result


# side -> the container's address on the pair's bridge network, when ours connects the way
# the peers do (set by main unless --via-published-ports).
DIRECT = {}


def module_endpoint(pair, side, dbname=pp.DATABASE):
    """The endpoint ours uses: the published 127.0.0.1 port, or the container's bridge
    address. The peers run in a container on the pair's network and reach the servers
    directly; through the published ports every byte of ours would also cross two
    docker-proxy processes (source -> controller -> target) on the same 2 CPUs."""
    endpoint = pair.module_endpoint(side, dbname)
    if side in DIRECT:
        endpoint.update(host=DIRECT[side], port=5432)
    return endpoint


def migration_args(pair, database, jobs, **extra):
    args = {
        "source": module_endpoint(pair, "src"),
        "target": module_endpoint(pair, "tgt", "postgres"),
        "target_database": database,
        "source_conninfo_from_target": {"host": SRC_HOST, "port": 5432},
        "replica_identity_policy": "full",
        "jobs": jobs,
        **pair.engine_client_args(),
    }
    args.update(extra)
    return args


def drop_target_db(pair, database):
    pair.psql("tgt", f"DROP DATABASE IF EXISTS {database} WITH (FORCE)", dbname="postgres")


def ours(pair, state_dir, jobs):
    database = "bench_ours"
    drop_target_db(pair, database)
    with Meter(pair) as meter:
        started = time.monotonic()
        result = run_module(state_dir, "pg_logical_migration", migration_args(pair, database, jobs))
        seconds = time.monotonic() - started
    steps = {s["step"]: s["seconds"] for s in result["steps"]}
    copy = steps.get("copy data (parallel COPY binary)")
    post = steps.get("target: secondary indexes, constraints, foreign keys, triggers")
    run_module(
        state_dir,
        "pg_logical_migration",
        migration_args(pair, database, jobs, state="absent", drop_target_database=True),
    )
    return {
        "seconds": round(seconds, 2),
        "copy_seconds": copy,
        "post_data_seconds": post,
        "steps": [[s["step"], s["seconds"], s.get("detail")] for s in result["steps"]],
        "copy": result.get("copy"),
        **meter.facts(),
    }


def tools(*argv, timeout=7200):
    run = subprocess.run(
        ["docker", "exec", "-e", "PGPASSFILE=/run/secrets/pgpass", TOOLS, *argv],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if run.returncode != 0:
        raise RuntimeError(
            f"{argv[0]} failed (rc={run.returncode}): {run.stdout[-3000:]} {run.stderr[-3000:]}"
        )
    return run


def start_tools(pair, state_dir):
    passfile = Path(state_dir) / "pgpass"
    passfile.write_text(
        f"{SRC_HOST}:5432:*:postgres:{pair.passwords['src']}\n{TGT_HOST}:5432:*:postgres:{pair.passwords['tgt']}\n"
    )
    os.chmod(passfile, 0o600)
    pp.docker("rm", "-fv", TOOLS, check=False)
    pp.docker(
        "run", "-d", "--name", TOOLS, "--network", pp.NETWORK, "-v", f"{passfile}:/run/secrets/pgpass:ro",
        "--entrypoint", "sleep", TOOLS_IMAGE, "infinity",
    )  # fmt: skip


def create_target_db(pair, database):
    drop_target_db(pair, database)
    pair.psql(
        "tgt",
        f"CREATE DATABASE {database} TEMPLATE template0 ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C.UTF-8'",
        dbname="postgres",
    )


def dump_restore(pair, jobs):
    database = "bench_dump"
    create_target_db(pair, database)
    tools("rm", "-rf", "/tmp/dump")
    src = ["-h", SRC_HOST, "-U", "postgres", "-d", pp.DATABASE]
    with Meter(pair) as meter:
        started = time.monotonic()
        dump = ["pg_dump", "-Fd", f"-j{jobs}", "-f", "/tmp/dump", "--no-publications", "--no-subscriptions"]
        tools(*dump, *src)
        dumped = time.monotonic() - started
        tools("pg_restore", f"-j{jobs}", "-h", TGT_HOST, "-U", "postgres", "-d", database, "/tmp/dump")
        seconds = time.monotonic() - started
    size = tools("du", "-sm", "/tmp/dump").stdout.split()[0]
    tools("rm", "-rf", "/tmp/dump")
    drop_target_db(pair, database)
    return {
        "seconds": round(seconds, 2),
        "dump_seconds": round(dumped, 2),
        "restore_seconds": round(seconds - dumped, 2),
        "dump_mib": int(size),
        **meter.facts(),
    }


def pgcopydb(pair, jobs):
    database = "bench_pgcopydb"
    create_target_db(pair, database)
    tools("rm", "-rf", "/tmp/pgcopydb")
    with Meter(pair) as meter:
        started = time.monotonic()
        run = tools(
            "pgcopydb", "clone", "--source", f"postgres://postgres@{SRC_HOST}:5432/{pp.DATABASE}",
            "--target", f"postgres://postgres@{TGT_HOST}:5432/{database}", "--table-jobs", str(jobs),
            "--index-jobs", str(jobs), "--dir", "/tmp/pgcopydb",
        )  # fmt: skip
        seconds = time.monotonic() - started
    summary = [
        line for line in run.stderr.splitlines() if "Total Wall Clock Duration" in line or "COPY" in line
    ]
    tools("rm", "-rf", "/tmp/pgcopydb")
    drop_target_db(pair, database)
    return {"seconds": round(seconds, 2), "summary": summary[-6:], **meter.facts()}


# -- cutover ---------------------------------------------------------------------------


class Writer(threading.Thread):
    """Inserts one cut_probe row every 20 ms as the application role; logs acknowledgements."""

    def __init__(self, pair):
        super().__init__(daemon=True)
        self.pair = pair
        self.side = "src"
        self.database = {"src": pp.DATABASE, "tgt": "bench_cut"}
        self.acked = []  # (n, monotonic time of the acknowledgement, side)
        self.rejected = []
        self.stop_event = threading.Event()
        self.n = 0

    def run(self):
        conn, conn_side = None, None
        while not self.stop_event.is_set():
            self.n += 1
            side = self.side
            try:
                if conn is None or conn.closed or conn_side != side:
                    if conn is not None:
                        conn.close()
                    conn = connect(
                        self.pair,
                        side,
                        self.database[side],
                        user=APP_ROLE,
                        password=APP_PASSWORD,
                        connect_timeout=3,
                    )
                    conn_side = side
                conn.execute("INSERT INTO cut_probe (n) VALUES (%s)", (self.n,))
                self.acked.append((self.n, time.monotonic(), side))
            except psycopg.Error as error:
                self.rejected.append((self.n, str(error).splitlines()[0][:120]))
                if conn is not None:
                    conn.close()
                conn = None
            time.sleep(0.02)
        if conn is not None:
            conn.close()


def pg_endpoint(pair, side, dbname):
    ep = pair.endpoint(side, dbname)
    return _pg.PgEndpoint(ep["host"], ep["dbname"], ep["port"], ep["user"], ep["password"], "disable")


def cutover_once(pair, state_dir, jobs):
    database = "bench_cut"
    drop_target_db(pair, database)
    pair.psql("src", f"ALTER ROLE {APP_ROLE} LOGIN PASSWORD '{APP_PASSWORD}'", dbname="postgres")
    run_module(state_dir, "pg_logical_migration", migration_args(pair, database, jobs))
    pair.psql("tgt", f"ALTER ROLE {APP_ROLE} LOGIN PASSWORD '{APP_PASSWORD}'", dbname="postgres")
    # pg_cutover's reverse publication is FOR ALL TABLES: the target's copy bookkeeping
    # (odoo_migration.copy_state, copy_progress; absent on the source) would break the
    # reverse subscription, so it is dropped once the copy is done.
    pair.psql(
        "tgt",
        "DROP TABLE IF EXISTS odoo_migration.copy_progress, odoo_migration.copy_state",
        dbname=database,
    )
    writer = Writer(pair)
    writer.start()
    time.sleep(2)
    conninfo = f"host={TGT_HOST} port=5432 user=postgres password={pair.passwords['tgt']} dbname={database}"
    try:
        report = _cutover.run_cutover(
            pg_endpoint(pair, "src", pp.DATABASE),
            pg_endpoint(pair, "tgt", database),
            application_roles=[APP_ROLE],
            target_conninfo_from_source=conninfo,
        )
    finally:
        writer.side = "tgt"
        time.sleep(2)
        writer.stop_event.set()
        writer.join(10)
    times = [t for _, t, _ in writer.acked]
    gap = max((b - a for a, b in zip(times, times[1:], strict=False)), default=None)
    on_target = set(int(r[0]) for r in pair.query("tgt", "SELECT n FROM cut_probe", dbname=database))
    acked = [n for n, _, _ in writer.acked]
    lost = [n for n in acked if n not in on_target]
    stored_rejected = [n for n, _ in writer.rejected if n in on_target]
    _cutover.run_finalize(pg_endpoint(pair, "src", pp.DATABASE), pg_endpoint(pair, "tgt", database))
    drop_target_db(pair, database)
    pair.psql("src", "TRUNCATE cut_probe")
    return {
        "state": report["state"],
        "write_unavailable_seconds": report["write_unavailable_seconds"],
        "writer_gap_seconds": round(gap, 3) if gap is not None else None,
        "acknowledged": len(acked),
        "acknowledged_on_target_side": sum(1 for _, _, s in writer.acked if s == "tgt"),
        "rejected": len(writer.rejected),
        "lost": len(lost),
        "rejected_but_stored": len(stored_rejected),
        "steps": [[s["step"], s["seconds"]] for s in report["steps"]],
    }


# -- report ----------------------------------------------------------------------------


def machine(pair):
    mem = next(line for line in Path("/proc/meminfo").read_text().splitlines() if line.startswith("MemTotal"))
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if "model name" in line
        ),
        platform.processor(),
    )
    versions = {side: pair.scalar(side, "SELECT version()", dbname="postgres") for side in ("src", "tgt")}
    settings = {
        side: dict(
            pair.query(
                side,
                "SELECT name, setting || coalesce(unit, '') FROM pg_settings WHERE name IN "
                "('shared_buffers', 'max_wal_size', 'maintenance_work_mem', 'wal_level', "
                "'max_parallel_maintenance_workers', 'synchronous_commit', 'fsync')",
                dbname="postgres",
            )
        )
        for side in ("src", "tgt")
    }
    pgcopydb_version = tools("pgcopydb", "--version").stdout.splitlines()
    docker_version = pp.docker("version", "--format", "{{.Server.Version}}").stdout.strip()
    return {
        "cpus": os.cpu_count(),
        "cpu_model": cpu,
        "memory_gib": round(int(mem.split()[1]) / 1024 / 1024, 1),
        "kernel": platform.release(),
        "docker": docker_version,
        "postgresql": versions,
        "settings": settings,
        "pgcopydb": [line for line in pgcopydb_version if line.startswith("pgcopydb")][:1],
        "python": platform.python_version(),
        "psycopg": f"{psycopg.__version__} ({psycopg.pq.__impl__})",
    }


def ratio(peer, mine):
    return round(peer / mine, 2) if peer and mine else None


def write_report(report):
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "pg_copy.json").write_text(json.dumps(report, indent=2) + "\n")
    m = report["machine"]
    lines = [
        "# PostgreSQL copy: pg_logical_migration vs pg_dump/pg_restore vs pgcopydb (one run)",
        "",
        f"Machine: **{m['cpus']} CPUs** ({m['cpu_model']}), {m['memory_gib']} GiB RAM, kernel {m['kernel']}, "
        f"Docker {m['docker']}; source and target servers, the tools and the controller share these CPUs.",
        f"Source: {m['postgresql']['src'].split(' on ')[0]}; "
        f"target: {m['postgresql']['tgt'].split(' on ')[0]}; "
        f"{(m['pgcopydb'] or ['pgcopydb: not run'])[0]}; psycopg {m['psycopg']}. "
        f"Run on {report['date']}, {report['total_minutes']} minutes in all.",
        "",
        f"Every contender copies `shop` into a fresh empty database on the same PG18 server with "
        f"{report['jobs']} jobs. Ours is timed from ansible-playbook's start to the subscription created "
        "(schema, primary keys, copy, secondary indexes/constraints/FKs, ANALYZE, subscription); "
        "pg_dump/pg_restore is dump + restore (no ANALYZE); pgcopydb clone includes its own VACUUM ANALYZE. "
        "Ratio = peer seconds / our seconds (above 1: ours is faster).",
        "",
        "| dataset | rows | ours total (s) | ours copy phase (s) | ours post-data (s) "
        "| pg_dump+pg_restore (s) | pgcopydb clone (s) | dump/ours | pgcopydb/ours |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for size in report["sizes"]:
        o, d, c = size["ours"], size.get("dump") or {}, size.get("pgcopydb") or {}
        lines.append(
            f"| {size['dataset']['database_mib']} MiB | {size['dataset']['rows']} | {o['seconds']} "
            f"| {o['copy_seconds']} | {o['post_data_seconds']} "
            f"| {d.get('seconds')} (dump {d.get('dump_seconds')} + restore {d.get('restore_seconds')}) "
            f"| {c.get('seconds', c.get('error', 'not run'))} | {size['ratio_dump_over_ours']} "
            f"| {size['ratio_pgcopydb_over_ours']} |"
        )
    lines += [
        "",
        "CPU seconds used by the contender (source, target and tools containers, and the controller's "
        "child processes such as ansible-playbook), the target's WAL, and the machine's 1-minute load "
        "average when it started (the machine is shared: a load above 2 means other work competed "
        "for the CPUs).",
        "",
        "| dataset | ours CPU-s | dump+restore CPU-s | pgcopydb CPU-s | ours WAL (MiB) | dump WAL | "
        "pgcopydb WAL | load at start (ours / dump / pgcopydb) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for size in report["sizes"]:
        o, d, c = size["ours"], size.get("dump") or {}, size.get("pgcopydb") or {}
        lines.append(
            f"| {size['dataset']['database_mib']} MiB "
            + "".join(f"| {(x.get('cpu_seconds') or {}).get('total')} " for x in (o, d, c))
            + "".join(f"| {x.get('target_wal_mib')} " for x in (o, d, c))
            + "| "
            + " / ".join(str(x.get("loadavg_1min_at_start")) for x in (o, d, c))
            + " |"
        )
    lines += ["", "Aim (issue 4): at least as fast as pgcopydb, at least twice as fast as dump/restore.", ""]
    for size in report["sizes"]:
        rd, rc = size.get("ratio_dump_over_ours"), size.get("ratio_pgcopydb_over_ours")
        verdict = [
            f"twice dump/restore: {'met' if rd and rd >= 2 else 'not met'} ({rd})",
            f"as fast as pgcopydb: {'met' if rc and rc >= 1 else 'not met'} ({rc})",
        ]
        lines.append(f"- {size['dataset']['database_mib']} MiB: " + "; ".join(verdict) + ".")
    lines.append("")
    for size in report["sizes"]:
        post = next((st[2] for st in size["ours"]["steps"] if st[0].startswith("target: secondary")), None)
        if post:
            lines.append(f"Ours at {size['dataset']['database_mib']} MiB, post-data: {post}.")
    lines.append("")
    for size in report["sizes"]:
        lines.append(
            f"Dataset {size['dataset']['database_mib']} MiB, largest tables: "
            + ", ".join(
                f"{t['table']} {t['rows']} rows / {t['mib']} MiB"
                for t in size["dataset"]["largest_tables"][:6]
            )
            + f". Grown in {size['grow_seconds']} s."
        )
        lines.append("")
    cut = report.get("cutover")
    if cut:
        lines += [
            f"## Cutover under a steady writer ({cut['dataset_mib']} MiB dataset, {len(cut['runs'])} runs)",
            "",
            "A writer inserts one row every 20 ms as the application role on the source and switches to "
            "the target as soon as pg_cutover's engine returns. write_unavailable_seconds is the module's "
            "own figure (fence start to end of the module); the writer gap is the longest interval between "
            "two acknowledged commits (it includes the 20 ms cadence and the reconnect to the target).",
            "",
            "| run | write_unavailable_seconds | writer gap (s) | acknowledged | rejected | lost |",
            "|---|---|---|---|---|---|",
        ]
        for i, run in enumerate(cut["runs"], 1):
            lines.append(
                f"| {i} | {run['write_unavailable_seconds']} | {run['writer_gap_seconds']} "
                f"| {run['acknowledged']} | {run['rejected']} | {run['lost']} |"
            )
        s = cut["summary"]
        lines += [
            f"| **median** | **{s['write_unavailable_median']}** | **{s['writer_gap_median']}** | | | |",
            f"| **max** | **{s['write_unavailable_max']}** | **{s['writer_gap_max']}** | | | "
            f"**{s['lost_total']}** |",
            "",
            "Aim (issue 4): under 5 s median, zero lost commits.",
        ]
    if report.get("notes"):
        lines += ["", "## Notes", ""] + [f"- {n}" for n in report["notes"]]
    (RESULTS / "pg_copy.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="300,4500", help="database sizes in MiB, comma separated")
    parser.add_argument("--jobs", type=int, default=4)
    parser.add_argument("--cutovers", type=int, default=5)
    parser.add_argument("--state-dir", help="where the pair's password files live (default: a temp dir)")
    parser.add_argument("--reuse", action="store_true", help="use the pair already running")
    parser.add_argument("--keep", action="store_true", help="leave the pair running")
    parser.add_argument("--skip-copy", action="store_true")
    parser.add_argument("--skip-cutover", action="store_true")
    parser.add_argument("--no-pgcopydb", action="store_true")
    parser.add_argument(
        "--via-published-ports",
        action="store_true",
        help="ours connects through 127.0.0.1's published ports (docker-proxy) instead of the bridge",
    )
    options = parser.parse_args()
    sizes = sorted(int(s) for s in options.sizes.split(","))
    state_dir = Path(options.state_dir or tempfile.mkdtemp(prefix="pg-copy-bench-"))
    begun = time.monotonic()
    if options.reuse:
        pair = pp.PgPair(state_dir)
        for side in pp.SIDES:
            pair._write_password(side)
    else:
        log("starting the pair and loading shop from the lab's acme")
        pair = pp.start_pair(state_dir)
    notes = list(NOTES)
    report = {"date": time.strftime("%Y-%m-%d"), "jobs": options.jobs, "sizes": [], "notes": notes}
    try:
        pp.image_tag("odoo-mig/pgcopydb-bench")
    except RuntimeError:
        sys.exit(f"build {TOOLS_IMAGE} first (see benchmarks/results/pg_copy.md, Notes)")
    if not options.via_published_ports:
        for side in pp.SIDES:
            DIRECT[side] = pp.docker(
                "inspect", "-f", f"{{{{(index .NetworkSettings.Networks \"{pp.NETWORK}\").IPAddress}}}}",
                pp.SIDES[side]["container"],
            ).stdout.strip()  # fmt: skip
    report["ours_connects_to"] = "bridge addresses" if DIRECT else "127.0.0.1 published ports"
    try:
        start_tools(pair, state_dir)
        report["machine"] = machine(pair)
        pair.psql("tgt", f"DO $$BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{APP_ROLE}') THEN "
                  f"CREATE ROLE {APP_ROLE} NOLOGIN; END IF; END$$", dbname="postgres")  # fmt: skip
        pair.psql(
            "src",
            "CREATE TABLE IF NOT EXISTS cut_probe (id bigserial PRIMARY KEY, n bigint NOT NULL, "
            "at timestamptz DEFAULT clock_timestamp()); ALTER TABLE cut_probe OWNER TO odoo",
        )
        for index, mib in enumerate(sizes):
            log(f"growing shop to about {mib} MiB")
            started = time.monotonic()
            grow(pair, mib)
            entry = {"requested_mib": mib, "grow_seconds": round(time.monotonic() - started, 1)}
            entry["dataset"] = dataset_facts(pair)
            log(f"dataset: {entry['dataset']['database_mib']} MiB, {entry['dataset']['rows']} rows")
            if not options.skip_copy:
                log("ours: pg_logical_migration")
                entry["ours"] = ours(pair, state_dir, options.jobs)
                log(f"  {entry['ours']['seconds']} s (copy {entry['ours']['copy_seconds']} s)")
                log("pg_dump -Fd -j | pg_restore -j")
                entry["dump"] = dump_restore(pair, options.jobs)
                log(f"  {entry['dump']['seconds']} s")
                if not options.no_pgcopydb:
                    log("pgcopydb clone")
                    try:
                        entry["pgcopydb"] = pgcopydb(pair, options.jobs)
                        log(f"  {entry['pgcopydb']['seconds']} s")
                    except RuntimeError as error:
                        entry["pgcopydb"] = {"error": str(error)[:1500]}
                        log(f"  failed: {str(error)[:500]}")
                entry["ratio_dump_over_ours"] = ratio(entry["dump"]["seconds"], entry["ours"]["seconds"])
                entry["ratio_pgcopydb_over_ours"] = ratio(
                    (entry.get("pgcopydb") or {}).get("seconds"), entry["ours"]["seconds"]
                )
                entry["ratio_dump_over_ours_copy_and_post_data"] = ratio(
                    entry["dump"]["seconds"],
                    entry["ours"]["copy_seconds"] + entry["ours"]["post_data_seconds"],
                )
            report["sizes"].append(entry)
            if index == 0 and not options.skip_cutover:
                runs = []
                for i in range(options.cutovers):
                    log(f"cutover {i + 1}/{options.cutovers}")
                    runs.append(cutover_once(pair, state_dir, options.jobs))
                    last = runs[-1]
                    log(f"  {last['write_unavailable_seconds']} s unavailable, "
                        f"gap {last['writer_gap_seconds']} s, lost {last['lost']}")  # fmt: skip
                unavailable = [r["write_unavailable_seconds"] for r in runs]
                gaps = [r["writer_gap_seconds"] for r in runs]
                report["cutover"] = {
                    "dataset_mib": entry["dataset"]["database_mib"],
                    "runs": runs,
                    "summary": {
                        "write_unavailable_median": round(statistics.median(unavailable), 3),
                        "write_unavailable_max": round(max(unavailable), 3),
                        "writer_gap_median": round(statistics.median(gaps), 3),
                        "writer_gap_max": round(max(gaps), 3),
                        "lost_total": sum(r["lost"] for r in runs),
                        "rejected_but_stored_total": sum(r["rejected_but_stored"] for r in runs),
                    },
                }
        report["total_minutes"] = round((time.monotonic() - begun) / 60, 1)
        write_report(report)
    finally:
        pp.docker("rm", "-fv", TOOLS, check=False)
        if not options.keep:
            pair.remove(quiet=True)
            if not options.state_dir:
                shutil.rmtree(state_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
