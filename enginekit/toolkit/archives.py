"""Image archives and tar streams.

- OCI image layouts and archives, docker-archive compatible
  (``enginekit.ociarchive``): :func:`normalize` makes any archive an engine
  writes one both kinds of reader take, :func:`to_combined` adds the
  docker-archive manifest, :func:`read_index` lists its images,
  :func:`extract_to_layout` / :func:`write_from_layout` go between an archive
  and a layout directory; :func:`familiar_name`, :func:`qualified_name` spell image names.
- Tar links (``enginekit.tarlinks``): :func:`from_ancestor` sends a tar whose
  links climb out of its folder from an ancestor instead.
- ADD's archives (``enginekit.addarchive``): :func:`decompressed`.
"""

from __future__ import annotations

from enginekit.addarchive import check_archive, decompressed
from enginekit.ociarchive import (
    ArchiveImage,
    ArchiveLayer,
    extract_to_layout,
    familiar_name,
    normalize,
    qualified_name,
    read_index,
    to_combined,
    write_from_layout,
)
from enginekit.ociarchive.files import write_whole
from enginekit.tarlinks import from_ancestor, rebased, staged

__all__ = [
    "ArchiveImage",
    "ArchiveLayer",
    "check_archive",
    "decompressed",
    "extract_to_layout",
    "familiar_name",
    "from_ancestor",
    "normalize",
    "qualified_name",
    "read_index",
    "rebased",
    "staged",
    "to_combined",
    "write_from_layout",
    "write_whole",
]
