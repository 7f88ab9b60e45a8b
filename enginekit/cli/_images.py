"""The image commands: ``build``, ``images``, ``image ...``, ``rmi``, ``pull``, ``push``."""

from __future__ import annotations

import argparse
import datetime as _dt
import os
import sys
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from ._app import UsageError, each
from ._args import connect, parse_filters, parse_pairs
from ._format import ago, human_size, print_json, print_table
from ._show import print_image

if TYPE_CHECKING:
    from enginekit import Image

__all__ = [
    "cmd_build",
    "cmd_image",
    "cmd_images",
    "cmd_pull",
    "cmd_push",
    "cmd_rmi",
]


# Build output lines that stay on screen; the rest share one rewritten line.
_KEPT = ("Step ", "STEP ", "[", "Successfully ")


def _columns(stream: Any) -> int:
    try:
        columns = os.get_terminal_size(stream.fileno()).columns
    except (OSError, ValueError):
        columns = 0
    return columns or 100


class _Progress:
    """Build output as it happens: every line on a pipe; on a terminal, step
    headers stay and a step's own output shows on one line that is rewritten."""

    def __init__(self, stream: Any) -> None:
        self.stream = stream
        self.tty = bool(getattr(stream, "isatty", lambda: False)())
        self.pending = False

    def __call__(self, line: str) -> None:
        text = line.rstrip("\n")
        if not self.tty:
            self.stream.write(text + "\n")
        elif text.startswith(_KEPT):
            self._clear()
            self.stream.write(text + "\n")
        else:
            width = max(_columns(self.stream) - 4, 20)
            shown = text.replace("\r", " ").replace("\t", " ")
            shown = shown if len(shown) <= width else shown[: width - 1] + "…"
            self.stream.write("\r\x1b[K  \x1b[2m" + shown + "\x1b[0m")
            self.pending = True
        self.stream.flush()

    def _clear(self) -> None:
        if self.pending:
            self.stream.write("\r\x1b[K")
            self.pending = False

    def done(self) -> None:
        self._clear()
        self.stream.flush()


def cmd_build(args: argparse.Namespace) -> int:
    progress = None if args.quiet else _Progress(sys.stderr)
    with connect(args) as engine:
        try:
            image = engine.images.build(
                args.context,
                dockerfile=args.file,
                tags=list(args.tag),
                build_args=parse_pairs(args.build_arg, "build-arg"),
                labels=parse_pairs(args.label, "label"),
                target=args.target,
                progress=progress,
            )
        finally:
            if progress is not None:
                progress.done()
    if args.json:
        print_json(image)
    else:
        print(image.id)
    return 0


def _image_rows(images: Sequence[Image]) -> Iterator[tuple[str, ...]]:
    for img in images:
        created = ago(img.created)
        for tag in img.tags or ("<none>:<none>",):
            repo, _, t = tag.rpartition(":")
            yield (repo, t, img.short_id, created, human_size(img.size))


def cmd_images(args: argparse.Namespace) -> int:
    filters = parse_filters(args.filter, ("label",))
    with connect(args) as engine:
        images = engine.images.list(name=args.name, labels=filters.get("label"))
    images.sort(key=lambda i: i.created or _dt.datetime.min.replace(tzinfo=_dt.UTC), reverse=True)
    if args.json:
        print_json(images)
    elif args.quiet:
        for img in images:
            print(img.short_id)
    else:
        print_table(("REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"), _image_rows(images))
    return 0


def cmd_rmi(args: argparse.Namespace) -> int:
    with connect(args) as engine:
        return each(
            args.images,
            lambda ref: engine.images.remove(ref, force=args.force),
            done="Untagged/deleted: {}",
        )


def cmd_image(args: argparse.Namespace) -> int:
    sub = args.image_command
    if sub in ("rm", "remove"):
        return cmd_rmi(args)
    if sub in ("ls", "list"):
        return cmd_images(args)
    with connect(args) as engine:
        if sub == "save":
            engine.images.save(args.image, args.output)
            return 0
        if sub == "load":
            loaded = engine.images.load(args.input)
            if args.json:
                print_json(loaded)
            else:
                for img in loaded:
                    print(f"Loaded image: {', '.join(img.tags) or img.id}")
            return 0
        if sub == "tag":
            engine.images.tag(args.source, args.target)
            return 0
        if sub == "inspect":
            images = [engine.images.get(ref) for ref in args.images]
            if args.json:
                print_json(images)
            else:
                for n, img in enumerate(images):
                    if n:
                        print()
                    print_image(img)
            return 0
    raise UsageError(f"unknown image command {sub!r}")  # pragma: no cover


def cmd_pull(args: argparse.Namespace) -> int:
    with connect(args) as engine:
        print(engine.images.pull(args.image).id)
    return 0


def cmd_push(args: argparse.Namespace) -> int:
    with connect(args) as engine:
        engine.images.push(args.image)
    return 0
