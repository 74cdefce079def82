"""The redis image's entrypoint: what ``docker-entrypoint.sh`` and the image's build do.

- a first argument that is an option (``--port``...) or a ``.conf`` file means
  ``redis-server`` with those arguments;
- without a config file the server starts with ``--protected-mode no`` (the image compiles
  that default in, since the container's network is its boundary);
- run as root, it hands ``/data`` to the ``redis`` user (999) and drops to it.
"""

from __future__ import annotations

import os
import sys

REDIS_UID = 999


def argv(args: list[str]) -> list[str]:
    if not args or args[0].startswith("-") or args[0].endswith(".conf"):
        args = ["redis-server", *args]
    if args[0] == "redis-server" and not (len(args) > 1 and args[1].endswith(".conf")):
        args = [args[0], "--protected-mode", "no", *args[1:]]
    return args


def main() -> None:
    args = argv(sys.argv[1:])
    if args[0] == "redis-server" and os.getuid() == 0:
        for root, dirs, files in os.walk("."):
            for name in [*dirs, *files]:
                os.lchown(os.path.join(root, name), REDIS_UID, REDIS_UID)
        os.chown(".", REDIS_UID, REDIS_UID)
        os.setgroups([])
        os.setgid(REDIS_UID)
        os.setuid(REDIS_UID)
    os.execvp(args[0], args)


if __name__ == "__main__":
    main()
