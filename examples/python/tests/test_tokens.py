import unittest

try:
    import jwt
except ImportError:  # PyJWT is not installed
    jwt = None

SECRET = "0123456789abcdef0123456789abcdef-token-test"


@unittest.skipIf(jwt is None, "PyJWT is not installed (pip install -r requirements.txt)")
class TokenTest(unittest.TestCase):
    def test_claims(self):
        from tokens import mint_connect_token

        tok = mint_connect_token("alice", SECRET, ttl_seconds=120, sid="s1")
        claims = jwt.decode(tok, SECRET, algorithms=["HS256"], audience="livegate")
        self.assertEqual(claims["sub"], "alice")
        self.assertEqual(claims["kind"], "connect")
        self.assertEqual(claims["sid"], "s1")
        self.assertEqual(len(claims["jti"]), 36)
        self.assertLessEqual(claims["exp"] - claims["iat"], 120)

    def test_refusals(self):
        from tokens import mint_connect_token

        with self.assertRaises(ValueError):
            mint_connect_token("alice", "short")
        with self.assertRaises(ValueError):
            mint_connect_token("", SECRET)


if __name__ == "__main__":
    unittest.main()
