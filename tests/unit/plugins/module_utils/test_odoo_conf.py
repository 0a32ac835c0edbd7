"""Odoo config and command-line resolution, checked against what Odoo 19 does."""

import pytest
from ansible_collections.sysgenpro.odoo_migration.plugins.module_utils.odoo import config as conf

PACKAGED = """[options]
; This is the password that allows database operations:
; admin_passwd = admin
db_host = False
db_port = False
db_user = odoo
db_password = False
#addons_path = /usr/lib/python3/dist-packages/odoo/addons
addons_path = /usr/lib/python3/dist-packages/odoo/addons,/opt/odoo/custom-addons
workers = 2
"""


def resolve(
    *, cli=(), environ=None, text=PACKAGED, home="/var/lib/odoo", cwd="/", home_exists=True, series="19.0"
):
    options, _subcommand, _notes = conf.parse_command_line(list(cli))
    config = conf.parse_config_text(text, "/etc/odoo/odoo.conf") if text is not None else None
    settings, notes, unknown = conf.resolve_settings(
        options, environ or {}, config, home, cwd, home_exists, series
    )
    return settings, notes, unknown


def test_both_comment_prefixes_are_skipped_and_only_live_keys_count():
    config = conf.parse_config_text(PACKAGED)
    assert "admin_passwd" not in config.options
    assert config.options["addons_path"].endswith("/opt/odoo/custom-addons")
    assert config.option_lines["workers"] == 10


def test_indented_comment_lines_are_comments_too():
    config = conf.parse_config_text("[options]\n   ; workers = 9\n  # workers = 8\nworkers = 1\n")
    assert config.options == {"workers": "1"}


def test_inline_comment_is_part_of_the_value_as_in_odoo_and_is_flagged():
    config = conf.parse_config_text("[options]\ndbfilter = ^%d$ ; one db per host\n")
    assert config.options["dbfilter"] == "^%d$ ; one db per host"
    assert any("inline comments" in note for note in config.notes)


def test_repeated_key_is_an_error_naming_both_lines_and_the_last_value_is_kept():
    config = conf.parse_config_text("[options]\nworkers = 2\nproxy_mode = True\nworkers = 4\n", "/etc/o.conf")
    assert config.options["workers"] == "4"
    assert config.duplicates == [{"section": "options", "key": "workers", "lines": [2, 4]}]
    assert "/etc/o.conf:4" in config.errors[0] and "line 2" in config.errors[0]


def test_keys_are_lower_cased_and_colon_works_as_delimiter():
    config = conf.parse_config_text("[options]\nHTTP_Port: 8070\n")
    assert config.options == {"http_port": "8070"}


def test_line_before_any_section_and_line_without_delimiter_are_errors():
    config = conf.parse_config_text("workers = 2\n[options]\njust words\n")
    assert len(config.errors) == 2
    assert "before any [section]" in config.errors[0]
    assert "has no '='" in config.errors[1]


def test_continuation_lines_extend_the_value():
    config = conf.parse_config_text("[options]\naddons_path = /a,\n    /b\nworkers = 1\n")
    assert config.options["addons_path"] == "/a,\n/b"
    settings, _notes, _unknown = resolve(text="[options]\naddons_path = /a,\n    /b\n")
    assert settings["addons_path"]["value"] == ["/a", "/b"]


def test_extra_sections_are_kept_with_secrets_masked():
    config = conf.parse_config_text(
        "[options]\n[queue_job]\nchannels = root:2\njobrunner_db_password = s3cr3t\n"
    )
    masked = conf.redact_sections(config.sections)
    assert masked == {"queue_job": {"channels": "root:2", "jobrunner_db_password": "<set>"}}


def test_false_on_a_non_boolean_option_means_unset_and_none_means_none():
    settings, notes, _unknown = resolve(text="[options]\ndb_host = False\ndb_port = False\nlogfile = None\n")
    assert settings["db_host"] == {"value": "", "source": "default"}
    assert settings["db_port"]["value"] is None
    assert settings["logfile"]["value"] is None
    assert any("db_host = False" in note for note in notes)


def test_booleans_accept_odoo_spellings_and_reject_others():
    settings, _notes, _unknown = resolve(text="[options]\nproxy_mode = yes\nlist_db = off\n")
    assert settings["proxy_mode"]["value"] is True
    assert settings["list_db"]["value"] is False
    with pytest.raises(conf.OdooConfigError, match="invalid boolean"):
        resolve(text="[options]\nproxy_mode = maybe\n")


def test_command_line_beats_environment_beats_file_beats_default():
    settings, _notes, _unknown = resolve(
        cli=["--config", "/etc/odoo/odoo.conf", "--workers=5"],
        environ={"ODOO_WORKERS": "3", "PGUSER": "envuser", "ODOO_HTTP_PORT": "8080"},
    )
    assert settings["workers"] == {"value": 5, "source": "command line"}
    assert settings["db_user"] == {"value": "envuser", "source": "environment (PGUSER)"}
    assert settings["http_port"]["value"] == 8080
    assert settings["max_cron_threads"] == {"value": 2, "source": "default"}
    assert settings["addons_path"]["source"] == "config file /etc/odoo/odoo.conf:9"


def test_odoo_environment_variables_only_count_from_odoo_19_but_pg_ones_always():
    settings, _notes, _unknown = resolve(environ={"ODOO_WORKERS": "3", "PGPORT": "5433"}, series="16.0")
    assert settings["workers"]["value"] == 2
    assert settings["db_port"]["value"] == 5433


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        (["-c", "/x.conf", "-D", "/data"], {"config": "/x.conf", "data_dir": "/data"}),
        (["-c/x.conf", "--data-dir=/data"], {"config": "/x.conf", "data_dir": "/data"}),
        (["server", "--no-database-list", "--proxy-mode"], {"list_db": "False", "proxy_mode": "True"}),
        (["-i", "base", "--stop-after-init", "--db_port", "5433"], {"db_port": "5433"}),
        (
            ["--log-handler", ":DEBUG", "--log-handler=werkzeug:WARNING"],
            {"log_handler": ":DEBUG,werkzeug:WARNING"},
        ),
        (
            ["--longpolling-port", "8073", "--xmlrpc-port", "8070"],
            {"gevent_port": "8073", "http_port": "8070"},
        ),
    ],
)
def test_command_line_forms(arguments, expected):
    options, _subcommand, notes = conf.parse_command_line(arguments)
    assert options == expected
    assert notes == []


def test_command_line_option_without_value_is_an_error():
    with pytest.raises(conf.OdooConfigError, match="--db_port needs a value"):
        conf.parse_command_line(["--db_port"])


def test_unknown_argument_is_noted_not_fatal():
    options, _subcommand, notes = conf.parse_command_line(["--frobnicate", "-c", "/a"])
    assert options == {"config": "/a"}
    assert "--frobnicate" in notes[0]


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (
            ["/usr/bin/python3", "/usr/bin/odoo", "-c", "/a"],
            ("/usr/bin/python3", "/usr/bin/odoo", ["-c", "/a"]),
        ),
        (
            ["/opt/venv/bin/python3", "-u", "/opt/src/odoo-bin"],
            ("/opt/venv/bin/python3", "/opt/src/odoo-bin", []),
        ),
        (["/usr/bin/odoo", "--config", "/a"], (None, "/usr/bin/odoo", ["--config", "/a"])),
        (["python3", "-m", "odoo", "server"], ("python3", "-m odoo", ["server"])),
    ],
)
def test_split_interpreter(argv, expected):
    assert conf.split_interpreter(argv) == expected


def test_is_odoo_command_recognises_the_usual_launchers_only():
    assert conf.is_odoo_command(["/usr/bin/python3", "/opt/odoo/src/odoo-bin", "-c", "x"])
    assert conf.is_odoo_command(["/opt/openerp/openerp-server"])
    assert conf.is_odoo_command(["python3", "-m", "odoo"])
    assert not conf.is_odoo_command(["/usr/bin/python3", "/usr/bin/odoo-backup.py"])
    assert not conf.is_odoo_command(["/usr/sbin/nginx"])


def test_relative_paths_resolve_from_the_service_working_directory_and_home():
    settings, _notes, _unknown = resolve(
        text="[options]\naddons_path = addons, ~/extra addons ,  $EXTRA/x\nlogfile = ../log/odoo.log\n",
        home="/opt/odoo",
        cwd="/opt/odoo/src",
        environ={"EXTRA": "/srv"},
    )
    assert settings["addons_path"]["value"] == ["/opt/odoo/src/addons", "/opt/odoo/extra addons", "/srv/x"]
    assert settings["logfile"]["value"] == "/opt/odoo/log/odoo.log"


def test_data_dir_explicit_wins_else_the_service_users_home():
    settings, _notes, _unknown = resolve(text="[options]\ndata_dir = /srv/odoo-erp/data\n")
    assert settings["data_dir"]["value"] == "/srv/odoo-erp/data"
    settings, _notes, _unknown = resolve()
    assert settings["data_dir"]["value"] == "/var/lib/odoo/.local/share/Odoo"
    assert "home /var/lib/odoo" in settings["data_dir"]["source"]
    settings, _notes, _unknown = resolve(cli=["-D", "/cli/data"], text="[options]\ndata_dir = /srv\n")
    assert settings["data_dir"]["value"] == "/cli/data"


def test_default_data_dir_follows_xdg_and_a_missing_home():
    assert conf.default_data_dir("/home/o", True, {"XDG_DATA_HOME": "/x"}) == "/x/Odoo"
    assert conf.default_data_dir("/nonexistent", False) == "/var/lib/Odoo"


def test_config_file_choice_order():
    assert conf.choose_config_file({"config": "/a"}, {"ODOO_RC": "/b"}, "/h", [])[0] == "/a"
    assert conf.choose_config_file({}, {"ODOO_RC": "/b"}, "/h", ["/h/.odoorc"])[0] == "/b"
    assert conf.choose_config_file({}, {}, "/h", ["/h/.odoorc", "/h/.openerp_serverrc"])[0] == "/h/.odoorc"
    assert conf.choose_config_file({}, {}, "/h", ["/h/.openerp_serverrc"])[0] == "/h/.openerp_serverrc"
    assert conf.choose_config_file({}, {}, "/h", [])[0] is None


def test_without_demo_maps_to_with_demo():
    settings, _notes, _unknown = resolve(text="[options]\nwithout_demo = all\n")
    assert settings["with_demo"]["value"] is False


def test_unknown_options_are_listed():
    _settings, _notes, unknown = resolve(text="[options]\ndefault_productivity_apps = True\nworkers = 1\n")
    assert unknown == ["default_productivity_apps"]


def test_secrets_are_described_never_shown():
    settings, _notes, _unknown = resolve(
        cli=["-w", "pw-on-cli"], text="[options]\nadmin_passwd = $pbkdf2-sha512$600000$abc\n"
    )
    report = conf.settings_for_report(settings)
    assert report["db_password"]["value"] == "<set>"
    assert report["admin_passwd"]["value"] == "<set>"
    assert "pw-on-cli" not in repr(report)
    assert conf.describe_secret("admin_passwd", settings["admin_passwd"])["hashed"] is True
    assert conf.redact_argv(["odoo", "-w", "pw", "--db_password=pw", "-wpw", "-c", "/a"]) == [
        "odoo", "-w", "<redacted>", "--db_password=<redacted>", "-w<redacted>", "-c", "/a",
    ]  # fmt: skip
    assert conf.environment_for_report({"PGPASSWORD": "x", "PGHOST": "db", "LANG": "C"}) == {
        "PGHOST": "db",
        "PGPASSWORD": "<set>",
    }


@pytest.mark.parametrize(
    ("dbfilter", "database", "host", "expected"),
    [
        ("", "acme", "", True),
        ("^acme$", "acme", "", True),
        ("^acme$", "globex", "", False),
        ("^%d$", "globex", "globex.lab.internal", True),
        ("^%d$", "globex", "www.initech.example", False),
        ("^%h$", "erp.example.com", "erp.example.com:443", True),
    ],
)
def test_dbfilter(dbfilter, database, host, expected):
    assert conf.dbfilter_matches(dbfilter, database, host) is expected
