"""A private PostgreSQL cluster for the tests: its own folder, a free loopback port,
run as the ``postgres`` user (initdb refuses root)."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

PASSWORD = "s3cret-Pa55"


def bindir() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found:
        pytest.fail("PostgreSQL server binaries are missing: install the Debian package "
                    "postgresql (initdb, pg_ctl, postgres)")
    return Path(found[-1]).parent


def as_postgres() -> list[str]:
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        pytest.fail("no 'postgres' user: install the Debian package postgresql")
    return ["runuser", "-u", "postgres", "--"]


class Cluster:
    def __init__(self, port: int) -> None:
        self.bin = bindir()
        self.port = port
        self.root = Path(tempfile.mkdtemp(prefix="vigil-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        shutil.chown(self.root, "postgres", "postgres")
        pwfile = self.root / "pw"
        pwfile.write_text(PASSWORD)
        shutil.chown(pwfile, "postgres", "postgres")
        subprocess.run([*as_postgres(), str(self.bin / "initdb"), "-D", str(self.data),
                        "-U", "postgres", "--pwfile", str(pwfile), "--auth-local=trust",
                        "--auth-host=scram-sha-256", "-E", "UTF8"],
                       check=True, capture_output=True, timeout=120)
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.write(f"port = {port}\nlisten_addresses = '127.0.0.1'\n"
                       f"unix_socket_directories = '{self.root}'\nfsync = off\n")

    @property
    def dsn(self) -> str:
        return f"postgresql://postgres:{PASSWORD}@127.0.0.1:{self.port}/postgres"

    def pg_ctl(self, *args: str) -> list[str]:
        return [*as_postgres(), str(self.bin / "pg_ctl"), "-D", str(self.data), "-l",
                str(self.log), *args]

    def start(self) -> None:
        subprocess.run(self.pg_ctl("-w", "start"), check=True, capture_output=True,
                       timeout=60)

    def stop(self) -> None:
        subprocess.run(self.pg_ctl("-m", "immediate", "-w", "stop"), capture_output=True,
                       timeout=60)

    def sql(self, statement: str) -> None:
        import psycopg

        with psycopg.connect(host=str(self.root), port=self.port, user="postgres",
                             dbname="postgres", autocommit=True) as conn:
            conn.execute(statement)

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)


def postmaster_pid(cluster: Cluster) -> int:
    pidfile = cluster.data / "postmaster.pid"
    return int(pidfile.read_text().split()[0]) if pidfile.exists() else 0


def is_up(cluster: Cluster) -> bool:
    pid = postmaster_pid(cluster)
    return bool(pid) and os.path.exists(f"/proc/{pid}")
