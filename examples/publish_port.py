"""Publish a container's port and talk to it from this machine.

    python examples/publish_port.py [ENGINE]

busybox's ``httpd`` serves a page on port 8080 inside the container; the
engine publishes it on a free port of its address (``ports={8080: None}``:
127.0.0.1 for an engine on this machine, the engine host's address for a
remote one, as the binding says), and the program fetches the page through it
(a handful of requests at most).
"""

from __future__ import annotations

import time
import urllib.request

from _image import LABELS, connect, example_image

SERVE = (
    "mkdir -p /tmp/www && echo 'hello over http' > /tmp/www/index.html "
    "&& exec httpd -f -p 8080 -h /tmp/www"
)

with connect() as engine, example_image(engine) as tag:
    c = engine.containers.run(tag, ["sh", "-c", SERVE], labels=LABELS, ports={8080: None})
    binding = next(p for p in c.ports if p.container_port == 8080)
    print(f"container port 8080/{binding.protocol} is on {binding.host_ip}:{binding.host_port}")
    host = f"[{binding.host_ip}]" if ":" in binding.host_ip else binding.host_ip
    url = f"http://{host}:{binding.host_port}/"
    direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never via a proxy
    for _attempt in range(20):  # the server needs a moment to listen
        try:
            with direct.open(url, timeout=2) as response:
                body = response.read().decode().strip()
                print(f"GET {url} -> {response.status}: {body}")
                break
        except OSError:
            time.sleep(0.25)
    else:
        raise SystemExit(f"nothing answered on {url}")
    stopped = engine.containers.stop(c, timeout=5)
    print(f"stopped: {stopped.state.name}, exit code {stopped.exit_code}")
print("done: nothing left behind")
