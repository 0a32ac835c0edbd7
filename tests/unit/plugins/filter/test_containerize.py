"""Filters from an instance's profile to its image and container settings."""

import pytest
from ansible.errors import AnsibleFilterError
from ansible_collections.sysgenpro.odoo_migration.plugins.filter import containerize

PACKAGES = [
    {
        "name": "python-dateutil",
        "version": "2.8.2",
        "location": "/usr/lib/python3/dist-packages",
        "in_virtualenv": False,
    },
    {
        "name": "requests_toolbelt",
        "version": "1.0.0",
        "location": "/opt/odoo/venv/lib/python3.11/site-packages",
        "in_virtualenv": True,
    },
    {
        "name": "xlsxwriter",
        "version": "3.1.9",
        "location": "/usr/local/lib/python3.11/site-packages",
        "in_virtualenv": False,
    },
]


def _instance(external, packages=PACKAGES):
    return {
        "python": {"packages": packages},
        "custom_addons": [
            {
                "name": "acme_sale",
                "path": "/opt/addons/acme_sale",
                "checksum": "sha256:1",
                "external_python": external,
            }
        ],
    }


def test_image_requirements_pins_pip_packages_only():
    instance = _instance(["requests-toolbelt", "python_dateutil", "XlsxWriter"])
    assert containerize.image_requirements(instance) == ["requests_toolbelt==1.0.0", "xlsxwriter==3.1.9"]


def test_image_requirements_leaves_os_packages_out():
    assert containerize.image_requirements(_instance(["python-dateutil"])) == []


def test_image_requirements_refuses_a_missing_package():
    with pytest.raises(AnsibleFilterError) as error:
        containerize.image_requirements(_instance(["missing_pkg"]))
    assert "acme_sale" in str(error.value) and "missing_pkg" in str(error.value)


def _profile(settings=None, server_names=()):
    return {
        "settings": settings or {},
        "nginx": {"sites": [{"odoo_routes": [{"server_names": list(server_names)}], "upstreams": {}}]},
    }


def test_database_filter_keeps_the_configured_one():
    profile = _profile({"dbfilter": {"value": "^%h$"}})
    assert containerize.image_config(profile, ["a", "b"])["dbfilter"] == "^%h$"


def test_database_filter_for_one_database():
    assert containerize.image_config(_profile(), ["acme"])["dbfilter"] == "^acme$"


def test_database_filter_by_host_name():
    profile = _profile(server_names=["acme.example.com", "globex.example.com"])
    assert containerize.image_config(profile, ["acme", "globex"])["dbfilter"] == "^%d$"


def test_database_filter_lists_the_databases_otherwise():
    profile = _profile(server_names=["acme.example.com"])
    assert containerize.image_config(profile, ["globex", "acme"])["dbfilter"] == "^(acme|globex)$"


def test_image_config_keeps_sizing_and_sets_container_values():
    settings = {
        "workers": {"value": 6},
        "limit_time_real": {"value": 1200},
        "limit_memory_hard": {"value": 2684354560},
        "max_cron_threads": {"value": None},
        "data_dir": {"value": "/srv/odoo"},
        "list_db": {"value": True},
        "http_interface": {"value": "127.0.0.1"},
    }
    config = containerize.image_config(_profile(settings), ["acme"], {"workers": 2, "log_level": "debug"})
    assert config["workers"] == 2 and config["log_level"] == "debug"
    assert config["limit_time_real"] == 1200 and config["limit_memory_hard"] == 2684354560
    assert "max_cron_threads" not in config and "data_dir" not in config
    assert config["list_db"] is False and config["proxy_mode"] is True
    assert config["http_interface"] == "0.0.0.0"
    assert config["addons_path"] == "/mnt/extra-addons"


def test_image_config_overrides_win_over_container_settings():
    config = containerize.image_config(_profile(), ["acme"], {"dbfilter": "^x$", "proxy_mode": False})
    assert config["dbfilter"] == "^x$" and config["proxy_mode"] is False


def _upstreams(upstreams, settings=None):
    return {"settings": settings or {}, "nginx": {"sites": [{"upstreams": upstreams}]}}


def test_upstream_map_maps_http_and_gevent_ports():
    instance = _upstreams(
        {"odoo": ["127.0.0.1:8069"], "odoochat": ["127.0.0.1:8072"], "static": ["127.0.0.1:8080"]}
    )
    assert containerize.upstream_map(instance, "web:8069", "web:8072") == {
        "127.0.0.1:8069": "web:8069",
        "127.0.0.1:8072": "web:8072",
    }


def test_upstream_map_follows_the_configured_ports():
    settings = {"http_port": {"value": 9069}, "gevent_port": {"value": 9072}}
    instance = _upstreams({"odoo": ["10.0.0.4:9069", "10.0.0.4:8069"], "chat": ["10.0.0.4:9072"]}, settings)
    assert containerize.upstream_map(instance, "w", "ws") == {"10.0.0.4:9069": "w", "10.0.0.4:9072": "ws"}


def test_upstream_map_refuses_when_nothing_matches():
    with pytest.raises(AnsibleFilterError, match="8069/8072"):
        containerize.upstream_map(_upstreams({"static": ["127.0.0.1:8080"]}), "w", "ws")


def test_public_hosts_from_web_base_url():
    instance = {
        "databases": [
            {"name": "acme", "parameters": {"web.base.url": "https://erp.acme.com:8443/web"}},
            {"name": "globex", "parameters": {"web.base.url": "http://globex.example.com"}},
            {"name": "bare", "parameters": None},
        ]
    }
    assert containerize.public_hosts(instance) == {
        "acme": "erp.acme.com:8443",
        "globex": "globex.example.com",
        "bare": "localhost",
    }


def test_filter_module_exposes_the_filters():
    filters = containerize.FilterModule().filters()
    assert filters["image_config"] is containerize.image_config
    assert set(filters) >= {"image_requirements", "upstream_map", "public_hosts", "addon_sources"}


def test_the_containers_serve_and_schedule_only_the_instances_databases():
    config = containerize.image_config(_profile(), ["initech", "globex"])
    assert config["db_name"] == ["globex", "initech"]
    assert (
        containerize.image_config(_profile(), ["globex", "initech"], {"db_name": "globex"})["db_name"]
        == "globex"
    )


@pytest.mark.parametrize("db_name", ["acme,globex", [], ""])
def test_a_db_name_override_that_reaches_beyond_the_instance_is_refused(db_name):
    with pytest.raises(AnsibleFilterError, match="not this instance's databases"):
        containerize.image_config(_profile(), ["globex"], {"db_name": db_name})
