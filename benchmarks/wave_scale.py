"""A wave of 4 VMs against a wave of 1: how much longer moving them side by side takes.

Needs a lab of at least four legacy VMs: `make lab-up LAB_VMS=4`. In one run:

1. every VM of the wave is discovered, containerized and replicated once, then finalized and cleared,
   so that both measured waves find the same things already done (images built and pushed,
   wal_level=logical on every VM) and the ratio measures the wave itself;
2. playbooks/wave.yml moves legacy-vm-1 alone (the peer: a wave of 1), timed end to end, then it is
   moved back, finalized and cleared;
3. playbooks/wave.yml moves the first four VMs side by side (one play, every host at once), timed the
   same way, and they are moved back, finalized and cleared.

`ratio_4_vs_1` is the wave of 4's wall time over the wave of 1's (aim: at most 1.5; 4.0 would be
the four moved one after the other). Per host: outcome and the maintenance page's seconds.

    .venv/bin/python benchmarks/wave_scale.py
Writes benchmarks/results/wave_scale.{json,md}.
"""

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))
from lab_playbooks import group_hosts, measured_on, playbook, write_results  # noqa: E402

WAVE_SIZE = 4
AIM_RATIO = 1.5
PEER = "a wave of 1 VM (legacy-vm-1) on the same lab, in the same run"


def limited(hosts, state):
    return ("-e", "wave=legacy", "-e", f"odoo_migration_state_dir={state}", "--limit", ",".join(hosts))


def reset(hosts, state):
    """Back on the VMs, the migration's objects dropped, the target and the Docker host cleared."""
    playbook("app_rollback.yml", *limited(hosts, state))
    playbook("finalize.yml", *limited(hosts, state))
    playbook("lab/playbooks/clear_wave.yml")


def timed_wave(hosts):
    state = Path(tempfile.mkdtemp(prefix=f"wave-scale-{len(hosts)}-"))
    started = time.monotonic()
    playbook("wave.yml", *limited(hosts, state), "-e", "pg_replicate_allow_restart=true", timeout=3600)
    seconds = round(time.monotonic() - started, 1)
    per_host = {}
    for host in hosts:
        app = yaml.safe_load((state / host / "app_cutover.yml").read_text())
        per_host[host] = dict(outcome=app["outcome"], maintenance_seconds=app.get("maintenance_seconds"))
    reset(hosts, state)
    return dict(hosts=hosts, wall_seconds=seconds, per_host=per_host)


def markdown(report):
    lines = [
        "# A wave of 4 VMs against a wave of 1 (benchmarks/wave_scale.py)",
        "",
        f"Measured {report['measured_at']} on {report['machine']}; peer: {PEER}.",
        "",
        "| wave | hosts | wall time (s) | outcomes | maintenance page per host (s) |",
        "|---|---|---|---|---|",
    ]
    for key in ("wave_of_1", "wave_of_4"):
        wave = report[key]
        lines.append(
            f"| {key.replace('_', ' ')} | {', '.join(wave['hosts'])} | {wave['wall_seconds']} | "
            f"{', '.join(sorted(set(h['outcome'] for h in wave['per_host'].values())))} | "
            f"{', '.join(str(h['maintenance_seconds']) for h in wave['per_host'].values())} |"
        )
    lines += [
        "",
        f"ratio_4_vs_1 = {report['ratio_4_vs_1']} (aim at most {AIM_RATIO}; "
        "4.0 would be one after the other).",
        "",
    ]
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.parse_args(argv)
    hosts = group_hosts("legacy")
    if len(hosts) < WAVE_SIZE:
        raise SystemExit(
            f"the lab has {len(hosts)} legacy VMs ({', '.join(hosts)}); a wave of {WAVE_SIZE} needs "
            f"`make lab-up LAB_VMS={WAVE_SIZE}` first"
        )
    wave = sorted(hosts, key=lambda name: int(name.rsplit("-", 1)[1]))[:WAVE_SIZE]
    warm = Path(tempfile.mkdtemp(prefix="wave-scale-warm-"))
    for name in ("discover.yml", "containerize.yml", "replicate.yml"):
        playbook(name, *limited(wave, warm), "-e", "pg_replicate_allow_restart=true", timeout=3600)
    playbook("finalize.yml", *limited(wave, warm))
    playbook("lab/playbooks/clear_wave.yml")
    one = timed_wave(wave[:1])
    print(json.dumps(one), flush=True)
    four = timed_wave(wave)
    print(json.dumps(four), flush=True)
    report = dict(
        measured_on(PEER),
        aim_ratio_4_vs_1=AIM_RATIO,
        wave_of_1=one,
        wave_of_4=four,
        ratio_4_vs_1=round(four["wall_seconds"] / one["wall_seconds"], 2),
    )
    write_results("wave_scale", report, markdown(report))


if __name__ == "__main__":
    main()
