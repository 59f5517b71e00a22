"""A Home Assistant backup taken while sessions run restores to a consistent database.

The Supervisor runs the app's ``backup_pre`` inside the container, copies ``/data`` file by file
(leaving out what ``backup_exclude`` matches, as its ``PurePath.match``), then runs
``backup_post``; a restore replaces ``/data`` with the copy. Here the commands are the ones in
config.yaml, the copy is made while a charger keeps sending meter values, and a fresh proxy
starts on the restored folder.
"""

from __future__ import annotations

import asyncio
import shlex
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path, PurePath
from typing import Any

import yaml

from ocpp_proxy.store import DATABASE_FILE
from ocpp_proxy.store.backup import SNAPSHOT_FILE, restore_snapshot
from tests.conftest import ConnectCharger, StartProxy, service

ROOT = Path(__file__).resolve().parent.parent


def app_command(key: str, data_dir: Path) -> list[str]:
    """config.yaml's ``backup_pre`` / ``backup_post`` for ``data_dir``, run with this Python."""
    argv = shlex.split(yaml.safe_load((ROOT / "config.yaml").read_text())[key])
    assert argv[0] == "ocpp-proxy"
    return [
        sys.executable,
        "-m",
        "ocpp_proxy",
        *(str(data_dir) if a == "/data" else a for a in argv[1:]),
    ]


def supervisor_copy(data_dir: Path, target: Path) -> list[str]:
    """Copy ``data_dir`` to ``target`` file by file as the Supervisor's backup does."""
    excludes = yaml.safe_load((ROOT / "config.yaml").read_text())["backup_exclude"]
    copied = []
    for path in sorted(data_dir.rglob("*")):
        relative = path.relative_to(data_dir)
        if path.is_dir() or any(PurePath("data", relative).match(p) for p in excludes):
            continue
        destination = target / relative
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, destination)
        copied.append(str(relative))
    return copied


async def sessions(proxy: Any) -> list[dict[str, Any]]:
    return (await proxy.get_json("/api/v1/sessions"))["sessions"]


async def test_a_backup_during_a_session_restores_every_finished_session(
    tmp_path: Path, start_csms: Any, start_proxy: StartProxy, connect_charger: ConnectCharger
) -> None:
    data_dir = tmp_path / "data"
    csms = await start_csms("a", first_transaction_id=100)
    proxy = await start_proxy(ocpp_services=[service(csms)], data_dir=str(data_dir))
    charger = await connect_charger(proxy)
    await csms.wait_connected("CP_1")
    await charger.run_session(transactions=2, meter_samples=3)
    await proxy.registry.changes.wait_for(lambda: not proxy.hub().sessions.running(), timeout_s=5)
    await proxy.recorded()  # sessions are written behind the frames' path
    # A third session is running while the backup is taken.
    await charger.status(1, "Preparing")
    tx = await charger.start_transaction(1, "SIMTAG01", charger.energy_wh)
    await proxy.registry.changes.wait_for(lambda: proxy.hub().sessions.running(), timeout_s=5)
    await proxy.recorded()
    finished = [s for s in await sessions(proxy) if s["stopped_at"] is not None]
    assert len(finished) == 2

    pre = await asyncio.to_thread(
        subprocess.run, app_command("backup_pre", data_dir), capture_output=True, text=True
    )
    assert pre.returncode == 0, pre.stderr
    assert (data_dir / SNAPSHOT_FILE).exists()

    # The charger goes on while the Supervisor copies.
    keep_charging = asyncio.create_task(meter_values(charger, tx, samples=20))
    backup = tmp_path / "backup"
    copied = await asyncio.to_thread(supervisor_copy, data_dir, backup)
    await keep_charging
    assert SNAPSHOT_FILE in copied and "api_token" in copied
    assert not [name for name in copied if name.startswith(DATABASE_FILE)], copied

    post = await asyncio.to_thread(
        subprocess.run, app_command("backup_post", data_dir), capture_output=True, text=True
    )
    assert post.returncode == 0, post.stderr
    assert not (data_dir / SNAPSHOT_FILE).exists()

    # Restore into a fresh data folder and start a proxy on it.
    restored = tmp_path / "restored"
    shutil.copytree(backup, restored)
    again = await start_proxy(ocpp_services=[service(csms)], data_dir=str(restored))
    assert (restored / DATABASE_FILE).exists() and not (restored / SNAPSHOT_FILE).exists()
    listed = await sessions(again)
    assert [s for s in listed if s["stopped_at"] is not None] == finished
    assert [s["transaction_id"] for s in listed if s["stopped_at"] is None] == [str(tx)]
    assert again.api_token == proxy.api_token  # the generated token comes back with the data
    await again.stop()
    with sqlite3.connect(restored / DATABASE_FILE) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


async def meter_values(charger: Any, tx: Any, samples: int) -> None:
    for _ in range(samples):
        charger.energy_wh += 50
        await charger.meter_values(1, tx, charger.energy_wh, 7400)


def test_a_snapshot_left_over_beside_a_database_gives_way_to_it(tmp_path: Path) -> None:
    (tmp_path / DATABASE_FILE).write_bytes(b"live")
    (tmp_path / SNAPSHOT_FILE).write_bytes(b"old")
    assert restore_snapshot(tmp_path) is False
    assert (tmp_path / DATABASE_FILE).read_bytes() == b"live"
    assert not (tmp_path / SNAPSHOT_FILE).exists()


def test_backup_commands_without_a_database(tmp_path: Path) -> None:
    done = subprocess.run(
        app_command("backup_pre", tmp_path), capture_output=True, text=True, check=True
    )
    assert "nothing to snapshot" in done.stdout
    subprocess.run(app_command("backup_post", tmp_path), check=True)
    assert list(tmp_path.iterdir()) == []
