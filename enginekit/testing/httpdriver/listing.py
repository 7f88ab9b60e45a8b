"""The container list at driver level: ``container_summaries`` from the list request alone."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

import pytest

from enginekit.capabilities import Capability
from enginekit.models import ContainerState, PortBinding

from ._kit import READY_SLEEP, SLEEP, Kit


class TestHttpDriverSummaries:
    def test_summaries_agree_with_inspect_from_the_list_alone(
        self, kit: Kit, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        d: Any = kit.driver  # container_summaries: not declared by the Driver protocol
        labels = {"enginekit.test.summary": uuid.uuid4().hex}
        port = (PortBinding(container_port=80),)
        made = {
            "created": kit.create(SLEEP, labels=labels, ports=port),
            "running": kit.run(SLEEP, labels=labels, ports=port),
            "failed": kit.run(("sh", "-c", "exit 3"), labels=labels),
            "killed": kit.run(READY_SLEEP, labels=labels),
        }
        if Capability.PAUSE in d.capabilities:
            made["paused"] = kit.run(SLEEP, labels=labels)
            d.container_pause(made["paused"])
        d.container_wait(made["failed"], timeout=30)
        d.container_kill(made["killed"], signal="SIGKILL")
        d.container_wait(made["killed"], timeout=30)

        def no_inspect(ref: str) -> Mapping[str, Any]:
            raise AssertionError(f"the list's containers were inspected ({ref})")

        with monkeypatch.context() as patch:
            patch.setattr(d, "_inspect_raw", no_inspect)
            found = d.container_summaries(all=True, labels=labels)
            live = d.container_summaries(labels=labels)
        assert sorted(s.id for s in found) == sorted(made.values())
        assert {s.id for s in live} == {made["running"], made.get("paused", made["running"])}
        for s in found:
            full = d.container_inspect(s.id)
            shared = ("name", "image", "image_id", "state", "labels", "engine")
            assert [getattr(s, f) for f in shared] == [getattr(full, f) for f in shared], s
            assert s.created_at is not None and full.created_at is not None
            assert s.created_at.replace(microsecond=0) == full.created_at.replace(microsecond=0)
            assert s.exit_code == full.exit_code
            if full.state in (ContainerState.RUNNING, ContainerState.PAUSED):
                assert s.ports == full.ports
                assert bool(s.ports) is (s.id == made["running"])
            else:
                assert s.ports in (None, full.ports)
        codes = {s.id: s.exit_code for s in found}
        assert (codes[made["failed"]], codes[made["killed"]]) == (3, 137)
