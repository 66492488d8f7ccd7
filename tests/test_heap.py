"""The C heap settings an import relies on (agent/heap.py), observed in a process of their own."""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest

glibc = pytest.mark.skipif(
    not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc", reason="glibc's malloc only"
)

# Where a 300 KB buffer lives after a 1 MiB mapped block was freed, which raises glibc's
# dynamic threshold past it: in the brk heap ("[heap]"), or in a mapping of its own.
CHILD = r"""
import ctypes, sys
from agent import heap

def in_heap(buffer):
    address = ctypes.addressof(ctypes.c_char.from_buffer(buffer))
    with open("/proc/self/maps") as maps:
        for line in maps:
            if line.rstrip().endswith("[heap]"):
                start, end = (int(x, 16) for x in line.split()[0].split("-"))
                if start <= address < end:
                    return True
    return False

freed = bytearray(1 << 20)
del freed
if sys.argv[1] == "fixed":
    assert heap.fixed_mmap_threshold()
print(in_heap(bytearray(300_000)))
"""


def where_a_large_buffer_goes(mode: str) -> str:
    done = subprocess.run([sys.executable, "-c", CHILD, mode], capture_output=True, text=True, timeout=60, check=True)
    return done.stdout.strip()


@glibc
def test_with_the_threshold_fixed_large_buffers_stay_out_of_the_heap() -> None:
    # glibc's default: after one large block is freed, the next ones come from the heap, where
    # an import's stream of them fragmented it and its memory grew with the file.
    assert where_a_large_buffer_goes("dynamic") == "True"
    assert where_a_large_buffer_goes("fixed") == "False"
