"""What ``inspect`` shows of a container or an image: its fields, one ``key  value`` line each."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._format import HIDDEN, human_size, iso_time, pairs_text, print_kv, quote_command

if TYPE_CHECKING:
    from enginekit import Container, ContainerSummary, Image

__all__ = ["ports_text", "print_container", "print_image"]


def ports_text(c: Container | ContainerSummary) -> str:
    return ", ".join(
        f"{p.host_ip}:{p.host_port}->{p.container_port}/{p.protocol}"
        if p.host_port
        else f"{p.container_port}/{p.protocol}"
        for p in c.ports or ()
    )


def print_container(c: Container, *, show_env: bool) -> None:
    env = {k: (v if show_env else HIDDEN) for k, v in c.env.items()}
    r = c.resources
    print_kv(
        [
            ("id", c.id),
            ("name", c.name),
            ("engine", c.engine),
            ("image", f"{c.image} ({c.image_id or '-'})"),
            ("state", c.state.name + (" (OOM-killed)" if c.oom_killed else "")),
            ("exit code", "-" if c.exit_code is None else c.exit_code),
            ("created", iso_time(c.created_at)),
            ("started", iso_time(c.started_at)),
            ("finished", iso_time(c.finished_at)),
            ("pid", c.pid or "-"),
            ("entrypoint", quote_command(c.entrypoint, None) if c.entrypoint else "-"),
            ("command", quote_command(c.command, None) if c.command else "-"),
            ("workdir", c.workdir or "-"),
            ("user", c.user or "-"),
            ("hostname", c.hostname or "-"),
            ("network", c.network),
            ("labels", pairs_text(c.labels)),
            ("env", pairs_text(env)),
            ("ports", ports_text(c) or "-"),
            (
                "mounts",
                ", ".join(f"{m.source}:{m.target}{':ro' if m.read_only else ''}" for m in c.mounts)
                or "-",
            ),
            ("memory", human_size(r.memory) if r.memory else "-"),
            ("cpus", r.cpus if r.cpus else "-"),
            ("pids limit", r.pids_limit or "-"),
            ("stop signal", c.stop_signal or "-"),
        ]
    )


def print_image(img: Image) -> None:
    cfg = img.config
    print_kv(
        [
            ("id", img.id),
            ("engine", img.engine),
            ("tags", ", ".join(img.tags) or "-"),
            ("created", iso_time(img.created)),
            ("size", f"{human_size(img.size)} ({img.size} bytes)"),
            ("os/arch", f"{img.os or '-'}/{img.architecture or '-'}"),
            ("labels", pairs_text(img.labels)),
            ("entrypoint", quote_command(cfg.entrypoint, None) if cfg.entrypoint else "-"),
            ("cmd", quote_command(cfg.cmd, None) if cfg.cmd else "-"),
            ("workdir", cfg.workdir or "-"),
            ("user", cfg.user or "-"),
            ("env", ", ".join(cfg.env) or "-"),
            ("exposed ports", ", ".join(cfg.exposed_ports) or "-"),
        ]
    )
