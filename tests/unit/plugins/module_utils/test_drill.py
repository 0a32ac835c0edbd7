"""The restore drill's own decisions: which backup, whether it fits, what a scratch instance looks like."""

import os

import pytest
from ansible_collections.sysgenpro.odoo_migration.plugins.module_utils.backup import drill as _drill

MIB = 1024 * 1024


def backup(label, stop, size=100 * MIB, error=False):
    return {"label": label, "type": "full", "stop": stop, "size_bytes": size, "error": error}


BACKUPS = [backup("F1", 1000), backup("F2", 2000), backup("F3", 3000, error=True)]


def test_latest_takes_the_newest_backup_without_errors():
    assert _drill.choose_backup(BACKUPS, "latest")["label"] == "F2"


def test_a_time_takes_the_newest_backup_that_stopped_before_it():
    assert _drill.choose_backup(BACKUPS, "time", 1500)["label"] == "F1"


def test_a_time_before_every_backup_is_refused_with_what_to_do():
    with pytest.raises(_drill.DrillError, match="no backup of the stanza stopped before the target time"):
        _drill.choose_backup(BACKUPS, "time", 500)


def test_a_drill_that_does_not_fit_says_how_much_it_needs_and_has(tmp_path):
    free = _drill.free_space(str(tmp_path))
    huge = backup("F9", 1000, size=free * 2)
    with pytest.raises(_drill.DrillError) as raised:
        _drill.check_space(str(tmp_path / "scratch"), huge, 0)
    message = str(raised.value)
    assert "does not fit on the disk" in message and "F9" in message and "Nothing was restored" in message
    assert f"needs {_drill.space_needed(huge) // MIB} MiB in {tmp_path / 'scratch'}" in message


def test_the_reserve_counts_against_the_space(tmp_path):
    small = backup("F1", 1000, size=MIB)
    needed, free = _drill.check_space(str(tmp_path), small, 0)
    assert needed == int(MIB * 1.1) + 256 * MIB and free > needed
    with pytest.raises(_drill.DrillError, match="must stay free"):
        _drill.check_space(str(tmp_path), small, free // MIB)


def test_restore_options_never_archive_and_map_tablespaces_into_the_scratch_directory():
    layout = _drill.Layout("/scratch")
    options = _drill.restore_options(layout, "time", "2026-12-07 10:00:00.000000+00", "F1")
    assert "--archive-mode=off" in options and "--pg1-path=/scratch/data" in options
    assert "--tablespace-map-all=/scratch/tablespaces" in options and "--set=F1" in options
    assert options[-3:] == [
        "--type=time",
        "--target=2026-12-07 10:00:00.000000+00",
        "--target-action=promote",
    ]
    immediate = _drill.restore_options(layout, "immediate", None, "F1")
    # pgBackRest's default target action pauses recovery: the drill's instance would never be promoted.
    assert "--type=immediate" in immediate and "--target-action=promote" in immediate
    assert not [o for o in _drill.restore_options(layout, "latest", None, "F1") if o.startswith("--type")]


def test_the_scratch_instance_listens_on_its_socket_only_and_matches_the_primary():
    control = _drill.read_control_settings(
        "max_connections setting:              100\nmax_worker_processes setting:         8\n"
        "max_locks_per_xact setting:           64\nwal_level setting:                    logical\n"
    )
    assert control == {
        "max_connections": "100",
        "max_worker_processes": "8",
        "max_locks_per_transaction": "64",
    }
    conf = _drill.scratch_configuration(_drill.Layout("/s"), 5499, control)
    assert "listen_addresses = ''" in conf and "unix_socket_directories = '/s/run'" in conf
    assert "archive_mode = 'off'" in conf and "max_connections = 100" in conf


def test_counts_are_compared_only_for_the_tables_expected():
    restored = _drill.parse_counts("public.a|3\npublic.b|0\n")
    assert restored == {"public.a": 3, "public.b": 0}
    assert _drill.compare_counts({"public.a": 3}, restored) == {}
    assert _drill.compare_counts({"public.a": 4, "public.c": 1}, restored) == {
        "public.a": [4, 3],
        "public.c": [1, None],
    }


def test_a_directory_not_made_by_a_drill_is_never_removed(tmp_path):
    (tmp_path / "precious").write_text("data")
    drill = _drill.Drill(lambda argv: (0, "", ""), "vm")
    with pytest.raises(_drill.DrillError, match="was not made by a drill"):
        drill.prepare(_drill.Layout(str(tmp_path)))
    assert (tmp_path / "precious").exists()
    drill.clear(_drill.Layout(str(tmp_path)))
    assert os.path.exists(tmp_path / "precious")


def test_a_recovery_paused_at_its_target_fails_at_once_instead_of_waiting_out_the_timeout(tmp_path):
    layout = _drill.Layout(str(tmp_path))
    os.makedirs(layout.data)
    (tmp_path / "data" / "postmaster.pid").write_text("1\n")
    (tmp_path / "postgresql.log").write_text("LOG:  recovery has paused\n")

    def run(argv):
        query = argv[-1]
        if "pg_is_in_recovery" in query:
            return 0, "t\n", ""
        if "pg_get_wal_replay_pause_state" in query:
            return 0, "paused\n", ""
        return 0, "", ""

    drill = _drill.Drill(run, "vm", timeout=60)
    drill.bin_dir = "/usr/lib/postgresql/17/bin"
    with pytest.raises(_drill.DrillError, match="recovery paused at its target.*recovery has paused"):
        drill.start(layout)
