"""enginekit: one interface over Docker, Podman and LXC, the same on every engine."""
