"""``python -m prober`` and the ``prober`` command."""

import gc

# No collections while the modules load: start-up allocates hundreds of thousands of
# long-lived objects (botocore, aiohttp), and every threshold crossing would walk
# them. cli.run() freezes what is loaded and switches the collector back on.
gc.disable()

from prober.cli import console  # noqa: E402

if __name__ == "__main__":
    console()
