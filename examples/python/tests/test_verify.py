import base64
import hashlib
import hmac
import os
import unittest

from livegate_verify import LivegateVerifyError, NonceCache, canonical_string, verify_livegate_request

SECRET = "0123456789abcdef0123456789abcdef-python-test"
NOW = 1767225600


def sign(method="POST", url="/livegate/event", body=b'{"a":1}', ts=NOW, nonce=None, secret=SECRET):
    nonce = nonce or base64.urlsafe_b64encode(os.urandom(16)).rstrip(b"=").decode()
    mac = hmac.new(secret.encode(), canonical_string(method, url, str(ts), nonce, body).encode(), hashlib.sha256).hexdigest()
    headers = {"Livegate-Timestamp": str(ts), "Livegate-Nonce": nonce, "Livegate-Signature": "v1=" + mac}
    return {"method": method, "url": url, "headers": headers, "body": body}


def code(r, secret=SECRET, cache=None):
    try:
        verify_livegate_request(r["method"], r["url"], r["headers"], r["body"], secret,
                                cache=cache or NonceCache(), now=lambda: NOW)
        return "ok"
    except LivegateVerifyError as e:
        return e.code


class VerifyTest(unittest.TestCase):
    def test_worked_example(self):
        r = {
            "method": "POST",
            "url": "/livegate/event",
            "headers": {
                "Livegate-Timestamp": "1767225600",
                "Livegate-Nonce": "AAECAwQFBgcICQoLDA0ODw",
                "Livegate-Signature": "v1=aa0a47a90033eea22cc8fde95ae5df6be7d96c71b07ae5757ed66edaf07609f7",
            },
            "body": b'{"conn_id":"9f4e2a71d03b-1","identity":{"sub":"alice"},"event":"send","payload":{"text":"hi"}}',
        }
        self.assertEqual(code(r, secret="livegate-example-secret-32-bytes-min!"), "ok")

    def test_valid(self):
        self.assertEqual(code(sign()), "ok")

    def test_rotation(self):
        other = "fedcba9876543210fedcba9876543210-python-other"
        cache = NonceCache()
        self.assertEqual(code(sign(), secret=[other, SECRET], cache=cache), "ok")
        self.assertEqual(code(sign(secret=other), secret=[other, SECRET], cache=cache), "ok")
        self.assertEqual(code(sign(secret="z" * 32), secret=[other, SECRET], cache=cache), "bad_signature")

    def test_tampered(self):
        def mutated(f):
            r = sign()
            f(r)
            return r

        cases = {
            "body": lambda r: r.update(body=b'{"a":2}'),
            "path": lambda r: r.update(url="/livegate/connect"),
            "query": lambda r: r.update(url=r["url"] + "?admin=1"),
            "method": lambda r: r.update(method="PUT"),
            "timestamp": lambda r: r["headers"].update({"Livegate-Timestamp": str(NOW + 1)}),
            "nonce": lambda r: r["headers"].update({"Livegate-Nonce": "A" * 22}),
            "signature": lambda r: r["headers"].update({"Livegate-Signature": "v1=" + "0" * 64}),
            "uppercase hex": lambda r: r["headers"].update(
                {"Livegate-Signature": "v1=" + r["headers"]["Livegate-Signature"][3:].upper()}),
            "missing": lambda r: r["headers"].pop("Livegate-Nonce"),
        }
        for name, f in cases.items():
            with self.subTest(name):
                self.assertEqual(code(mutated(f)), "bad_signature")

    def test_wrong_secret(self):
        self.assertEqual(code(sign(secret="x" * 40)), "bad_signature")

    def test_stale(self):
        for skew, want in [(-300, "ok"), (-301, "stale"), (300, "ok"), (301, "stale"), (-3600, "stale")]:
            with self.subTest(skew=skew):
                self.assertEqual(code(sign(ts=NOW + skew)), want)

    def test_replayed(self):
        cache = NonceCache()
        r = sign()
        self.assertEqual(code(r, cache=cache), "ok")
        self.assertEqual(code(r, cache=cache), "replayed")

    def test_forged_does_not_burn_nonce(self):
        cache = NonceCache()
        r = sign()
        forged = dict(r, body=b"{}")
        self.assertEqual(code(forged, cache=cache), "bad_signature")
        self.assertEqual(code(r, cache=cache), "ok")

    def test_cache_bounded(self):
        cache = NonceCache(3)
        reqs = [sign(ts=NOW - 10 + i) for i in range(3)]
        for r in reqs:
            self.assertEqual(code(r, cache=cache), "ok")
        self.assertEqual(code(sign(), cache=cache), "ok")
        self.assertEqual(len(cache.seen), 3)
        self.assertEqual(code(reqs[0], cache=cache), "replayed")

    def test_email_message_headers(self):
        # BaseHTTPRequestHandler's headers are an email.message.Message.
        from email.message import Message

        r = sign()
        m = Message()
        for k, v in r["headers"].items():
            m[k] = v
        r["headers"] = m
        self.assertEqual(code(r), "ok")
        m["Livegate-Signature"] = m["Livegate-Signature"]  # a second value
        self.assertEqual(code(r), "bad_signature")

    def test_short_secret(self):
        with self.assertRaises(ValueError):
            code(sign(), secret="short")


if __name__ == "__main__":
    unittest.main()
