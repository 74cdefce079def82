"""`make demo`: bring the local system up and show it working.

Starts the real backing services, prints how to reach them, and stops them again.
"""

from __future__ import annotations

import sys

from hack.services.__main__ import main as services_main


def main() -> int:
    return services_main(["up", "--once"])


if __name__ == "__main__":
    sys.exit(main())
