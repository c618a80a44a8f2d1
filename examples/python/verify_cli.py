"""Reads a JSON array of signed requests on stdin, verifies them in order
with one nonce cache and a fixed clock, and prints a JSON array of results
("ok", "bad_signature", "stale" or "replayed"). Used by the Go test that
checks the Go, Node and Python implementations agree."""

import base64
import json
import sys

from livegate_verify import LivegateVerifyError, NonceCache, verify_livegate_request


def main() -> None:
    cases = json.load(sys.stdin)
    cache = NonceCache()
    out = []
    for c in cases:
        try:
            verify_livegate_request(
                c["method"], c["url"], c["headers"], base64.b64decode(c["body_b64"]), c["secrets"],
                cache=cache, now=lambda c=c: c["now"],
            )
            out.append("ok")
        except LivegateVerifyError as e:
            out.append(e.code)
    sys.stdout.write(json.dumps(out))


if __name__ == "__main__":
    main()
