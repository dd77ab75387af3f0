"""``python -m tests.integration.corpus [BASE_URL]``: run the corpus, print a table.

Without an argument the endpoints come from ``casuvo endpoints --json``; with
one, its host and port replace theirs (to run the same corpus against another
server on the same data).
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path
from urllib.parse import urlsplit

from tests.integration.corpus import generate, run


def _endpoints(base: str | None) -> dict:
    casuvo = Path(sys.executable).with_name("casuvo")
    text = subprocess.run([str(casuvo), "endpoints", "--json"], capture_output=True,
                          text=True, check=True).stdout
    if base:
        ours = urlsplit(json.loads(text)["base"])
        theirs = urlsplit(base)
        text = text.replace(f"{ours.scheme}://{ours.netloc}",
                            f"{theirs.scheme}://{theirs.netloc}")
    return json.loads(text)


def main() -> None:
    cases = generate(_endpoints(sys.argv[1] if len(sys.argv) > 1 else None))
    total: Counter[str] = Counter()
    right: Counter[str] = Counter()
    got_by: Counter[tuple[str, str]] = Counter()
    for case, status, problem in run(cases):
        total[case.service] += 1
        ok = not problem
        right[case.service] += ok
        kind = ("none" if not status else "5xx" if status >= 500 else "4xx" if status >= 400
                else "2xx")
        got_by[(case.service, kind)] += 1
        if not ok:
            print(f"{case.id}: {problem}")
    print(f"\n{'service':10} {'cases':>6} {'as required':>12} {'2xx':>5} {'4xx':>5}"
          f" {'5xx':>5} {'none':>5}")
    for service in sorted(total):
        print(f"{service:10} {total[service]:6d} {right[service]:12d} "
              f"{got_by[(service, '2xx')]:5d} {got_by[(service, '4xx')]:5d} "
              f"{got_by[(service, '5xx')]:5d} {got_by[(service, 'none')]:5d}")
    print(f"{'all':10} {sum(total.values()):6d} {sum(right.values()):12d}")
    print("(2xx counts 3xx too; none: no answer)")


if __name__ == "__main__":
    main()
