"""`templateto-bridge scan` throughput on a 32 MiB text file, as a ratio to the floor of reading
the file in the same 1 MiB chunks and counting the prefix `tt_live_` (measured in the same run,
interleaved: machines here are shared and noisy, so only ratios are compared).

    python -m benchmarks.scanning            # or: make bench
"""

from __future__ import annotations

import random
import tempfile
from pathlib import Path

from benchmarks import live
from connector import keys, scanning

SIZE_MIB, KEYS, ROUNDS, TARGET_RATIO = 32, 200, 11, 3.0


def write_source_like_file(path: Path) -> None:
    """Lines of code-like text, a key value now and then, and look-alikes (mistyped values, the
    prefix alone) that the scanner must check and leave out."""
    rng = random.Random(18)
    line = b'    settings["render_timeout"] = compute(value, limit=30)  # keep it short\n'
    lines = [line] * (SIZE_MIB * 1024 * 1024 // len(line))
    for number, index in enumerate(rng.sample(range(len(lines)), KEYS * 3)):
        value = keys.generate()
        mistyped = value[:-1] + ("x" if value[-1] != "x" else "y")
        kinds = [f'API_KEY = "{value}"\n', f"{mistyped}\n", "see tt_live_…abcd\n"]
        lines[index] = kinds[number % 3].encode()
    path.write_bytes(b"".join(lines))


def main() -> None:
    with tempfile.TemporaryDirectory() as work:
        path = Path(work) / "source.txt"
        write_source_like_file(path)

        def floor() -> object:
            count = 0
            with path.open("rb") as file:
                while chunk := file.read(scanning.CHUNK_BYTES):
                    count += chunk.count(b"tt_live_")
            return count

        def scan() -> object:
            return sum(1 for _ in scanning.Scan().run([str(path)]))

        found = scan()
        assert found == KEYS, f"found {found} of the {KEYS} values"
        scan_median, floor_median = live.interleaved(scan, floor, rounds=ROUNDS, calls=1)

    ratio = scan_median / floor_median
    live.table("measurement | median per 32 MiB | MiB/s | ratio to floor", [
        ["floor: read in 1 MiB chunks, count the prefix", f"{floor_median * 1e3:.1f} ms",
         f"{SIZE_MIB / floor_median:,.0f}", "1.00"],
        [f"scan: format and checksum (all {found} values found)", f"{scan_median * 1e3:.1f} ms",
         f"{SIZE_MIB / scan_median:,.0f}", f"{ratio:.2f}"],
    ])  # fmt: skip
    verdict = "within" if ratio <= TARGET_RATIO else "OVER"
    print(f"\nratio {ratio:.2f}: {verdict} the target of {TARGET_RATIO:.0f}x")


if __name__ == "__main__":
    main()
