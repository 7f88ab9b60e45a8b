"""Re-record the Docker JSON that test_convert.py parses: ``python tests/record.py [DIR]``.

Talks to the dockerd at DOCKER_HOST (or the default socket) through the raw
transport, in the API version the adapter negotiates with it, makes one
labelled image and a few labelled containers, saves what the daemon answers
into ``DIR`` (default ``tests/data/v<API version>``, with ``-containerd``
for a daemon on the containerd image store) and removes everything it made.
Run it where the daemon runs (bind mounts name this machine's paths): on the
test host, ``scripts/testhost.sh exec env DOCKER_HOST=... .venv/bin/python
adapters/docker/tests/record.py``.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import sys
import tarfile
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from enginekit_docker import connect

from enginekit.transport import Transport

DATA = Path(__file__).parent / "data"
LABEL = {"enginekit.test": "docker-adapter-record"}


INFO_KEYS = (
    "DockerRootDir",
    "OSType",
    "Architecture",
    "CgroupVersion",
    "CgroupDriver",
    "MemoryLimit",
    "SwapLimit",
    "CpuCfsQuota",
    "PidsLimit",
    "SecurityOptions",
    "Driver",
    "DriverStatus",
)


def main() -> None:
    driver = connect()
    t: Transport = driver.transport
    API = f"/v{driver.api_version}"  # negotiated: the engine's newest known to the adapter
    tag = f"enginekit-docker-record:{uuid.uuid4().hex[:8]}"
    store = "-containerd" if driver.info().image_store == "containerd" else ""
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else DATA / f"v{driver.api_version}{store}"
    out.mkdir(parents=True, exist_ok=True)

    def call(method: str, path: str, **kw: Any) -> Any:
        resp = t.request(method, API + path, **kw)
        body = resp.read()
        assert resp.status < 400, (method, path, resp.status, body)
        return json.loads(body) if body.strip() else None

    def save(name: str, value: Any) -> None:
        (out / name).write_text(json.dumps(value, indent=1, sort_keys=True) + "\n")

    ctx = tempfile.mkdtemp()
    made: list[str] = []
    try:
        shutil.copy("/bin/busybox", os.path.join(ctx, "busybox"))
        Path(ctx, "Dockerfile").write_text(
            "FROM scratch\nCOPY busybox /bin/busybox\n"
            'RUN ["/bin/busybox", "--install", "-s", "/bin"]\n'
            "ENV PATH=/bin IMG=1\nWORKDIR /srv\nEXPOSE 80 53/udp\nSTOPSIGNAL SIGINT\n"
            'LABEL a.b=c\nCMD ["sh"]\n'
        )
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tar:
            tar.add(ctx, arcname=".")
        resp = t.request(
            "POST",
            API + "/build",
            params=[
                ("t", tag),
                ("rm", "1"),
                ("forcerm", "1"),
                ("version", "1"),
                ("labels", json.dumps(LABEL)),
            ],
            body=buf.getvalue(),
            headers={"Content-Type": "application/x-tar"},
            timeout=None,
        )
        (out / "build_ok.jsonl").write_bytes(resp.read())
        fail = io.BytesIO()
        with tarfile.open(fileobj=fail, mode="w") as tar:
            df = f"FROM {tag}\nRUN echo step-one\nRUN echo out; echo err >&2; exit 3\n".encode()
            info = tarfile.TarInfo("Dockerfile")
            info.size = len(df)
            tar.addfile(info, io.BytesIO(df))
        resp = t.request(
            "POST",
            API + "/build",
            params={"rm": "1", "forcerm": "1", "version": "1"},
            body=fail.getvalue(),
            headers={"Content-Type": "application/x-tar"},
            timeout=None,
        )
        build_fail = resp.read()
        (out / "build_fail.jsonl").write_bytes(build_fail)
        for line in build_fail.decode().splitlines():
            stream = json.loads(line).get("stream", "")
            if stream.startswith(" ---> ") and len(stream.strip()) == 17:
                made.append("image:" + stream.strip()[5:])
        save("image_inspect.json", call("GET", f"/images/{tag}/json"))
        save("image_history.json", call("GET", f"/images/{tag}/history"))
        save(
            "image_list.json", call("GET", "/images/json", params={"filters": {"reference": [tag]}})
        )

        def create(name: str, body: dict[str, Any]) -> str:
            body = {"Image": tag, "Labels": LABEL, **body}
            body.setdefault("HostConfig", {})["Init"] = True
            body["HostConfig"]["LogConfig"] = {"Type": "local", "Config": {}}
            cid = str(call("POST", "/containers/create", params={"name": name}, json=body)["Id"])
            made.append(cid)
            return cid

        suffix = uuid.uuid4().hex[:6]
        full = create(
            f"rec-full-{suffix}",
            {
                "Cmd": ["sh", "-c", "echo hi; echo oops >&2; exec sleep 100"],
                "Env": ["A=1", "IMG=2"],
                "User": "1000:1000",
                "WorkingDir": "/tmp",
                "Hostname": "recorded",
                "StopSignal": "SIGTERM",
                "ExposedPorts": {"8080/tcp": {}},
                "HostConfig": {
                    "PortBindings": {"8080/tcp": [{"HostIp": "127.0.0.1", "HostPort": ""}]},
                    "Mounts": [{"Type": "bind", "Source": ctx, "Target": "/mnt", "ReadOnly": True}],
                    "Memory": 67108864,
                    "MemorySwap": 67108864,
                    "NanoCpus": 500000000,
                    "PidsLimit": 64,
                    "NetworkMode": "bridge",
                },
            },
        )
        save("container_created.json", call("GET", f"/containers/{full}/json"))
        call("POST", f"/containers/{full}/start")
        time.sleep(0.3)
        save("container_running.json", call("GET", f"/containers/{full}/json"))
        save(
            "stats_limited.json",
            call("GET", f"/containers/{full}/stats", params={"stream": False, "one-shot": True}),
        )
        call("POST", f"/containers/{full}/pause")
        save("container_paused.json", call("GET", f"/containers/{full}/json"))
        call("POST", f"/containers/{full}/unpause")
        call("POST", f"/containers/{full}/stop", params={"t": 10}, timeout=60)
        save("container_exited.json", call("GET", f"/containers/{full}/json"))

        plain = create(
            f"rec-plain-{suffix}", {"Cmd": ["sleep", "100"], "HostConfig": {"NetworkMode": "none"}}
        )
        call("POST", f"/containers/{plain}/start")
        save(
            "stats_unlimited.json",
            call("GET", f"/containers/{plain}/stats", params={"stream": False, "one-shot": True}),
        )
        save("container_plain_running.json", call("GET", f"/containers/{plain}/json"))

        oom = create(
            f"rec-oom-{suffix}",
            {
                "Cmd": ["dd", "if=/dev/zero", "of=/dev/null", "bs=64M", "count=1"],
                "HostConfig": {"Memory": 16777216, "MemorySwap": 16777216},
            },
        )
        call("POST", f"/containers/{oom}/start")
        call("POST", f"/containers/{oom}/wait", timeout=60)
        save("container_oom.json", call("GET", f"/containers/{oom}/json"))

        logs = create(
            f"rec-logs-{suffix}",
            {
                "Cmd": [
                    "sh",
                    "-c",
                    "printf 'short\\n'; printf '\\377\\376bin\\n' >&2; "
                    "head -c 40000 /dev/zero | tr '\\0' x; echo; "
                    "head -c 16384 /dev/zero | tr '\\0' y; echo; printf 'no-newline'",
                ]
            },
        )
        call("POST", f"/containers/{logs}/start")
        call("POST", f"/containers/{logs}/wait", timeout=60)
        resp = t.request(
            "GET",
            f"{API}/containers/{logs}/logs",
            params={"stdout": True, "stderr": True, "timestamps": True},
        )
        (out / "logs_frames.bin").write_bytes(resp.read())

        header = t.request("HEAD", f"{API}/containers/{full}/archive", params={"path": "/bin/sh"})
        header.read()
        dir_header = t.request("HEAD", f"{API}/containers/{full}/archive", params={"path": "/bin"})
        dir_header.read()
        save(
            "path_stat.json",
            {
                "/bin/sh": header.headers["X-Docker-Container-Path-Stat"],
                "/bin": dir_header.headers["X-Docker-Container-Path-Stat"],
            },
        )
        version = call("GET", "/version")
        info = call("GET", "/info")
        save("version.json", version)
        save("info.json", {k: info[k] for k in INFO_KEYS if k in info})
        ping = t.request("GET", "/_ping")
        ping.read()
        save("ping.json", {k: v for k, v in ping.headers.items() if k.lower() != "date"})
    finally:
        for cid in made:
            if not cid.startswith("image:"):
                t.request("DELETE", f"{API}/containers/{cid}", params={"force": True}).read()
        t.request("DELETE", f"{API}/images/{tag}", params={"force": True}).read()
        for item in reversed(made):
            if item.startswith("image:"):
                t.request("DELETE", f"{API}/images/{item[6:]}").read()
        shutil.rmtree(ctx, ignore_errors=True)


if __name__ == "__main__":
    main()
