"""Peak resident memory of this process image, for the benchmarks' memory figures.

``getrusage(...).ru_maxrss`` is not it on Linux: a child started by ``subprocess`` (fork, then
exec) inherits its parent's resident size at the fork as its high-water mark, so a worker launched
by a benchmark that had just prepared a dataset in-process reported the parent's gigabytes.
``VmHWM`` in ``/proc/self/status`` starts afresh with the new program.
"""

from __future__ import annotations

import resource
import sys


def peak_rss_kib() -> int:
    """High-water resident set size of this program since it started, in KiB (``VmHWM``; elsewhere ``ru_maxrss``)."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])  # "kB" there means KiB
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak // 1024 if sys.platform == "darwin" else peak  # bytes on macOS, KiB on Linux
