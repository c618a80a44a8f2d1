"""A minimal backend for a livegate gateway in proxy mode (stdlib
http.server; token minting needs PyJWT):

    GET  /                   the chat page (../chat-page/)
    POST /token              a connect token for {"user": ...} (demo sign-in)
    POST /announce           publishes through the gateway's HTTP API
    POST /livegate/connect, /livegate/subscribe, /livegate/event,
         /livegate/disconnect   the proxy routes, every request verified

Environment as for the Node example (no LIVEGATE_ prefix: `livegate serve`
reads those as its own settings): PORT (default 3000), PROXY_SECRET_FILE or
PROXY_SECRET, TOKEN_SECRET_FILE or TOKEN_SECRET, GATEWAY_URL (default
http://127.0.0.1:8080), GATEWAY_WS_URL (default GATEWAY_URL's /ws),
GATEWAY_API_KEY.
"""

import json
import logging
import os
import re
import sys
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from livegate_verify import LivegateVerifyError, verify_livegate_request

PORT = int(os.environ.get("PORT", "3000"))


def secret_from_env(name):
    """The secret in the variable name, or in the file name_FILE names
    (without its trailing newline, as the gateway reads it)."""
    path = os.environ.get(name + "_FILE")
    if path:
        return Path(path).read_text(encoding="utf-8").rstrip("\r\n")
    return os.environ.get(name, "")


PROXY_SECRET = ""
TOKEN_SECRET = ""
API_URL = (os.environ.get("GATEWAY_URL") or "http://127.0.0.1:8080").rstrip("/")
API_KEY = os.environ.get("GATEWAY_API_KEY", "")
WS_URL = os.environ.get("GATEWAY_WS_URL") or re.sub(r"^http", "ws", API_URL) + "/ws"
MAX_BODY = 64 * 1024
CHAT_PAGE = Path(__file__).parent.parent / "chat-page"
VALID_NAME = re.compile(r"[A-Za-z0-9_-]{1,32}")


def publish(channel, data):
    """Publishes through the gateway's HTTP API with the API key."""
    req = urllib.request.Request(
        API_URL + "/api/publish",
        data=json.dumps({"channel": channel, "data": data}).encode(),
        headers={"Authorization": "Bearer " + API_KEY, "Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(req, timeout=5) as resp:  # nosec: the gateway's configured URL
        return json.load(resp)


def on_connect(body):
    if not body.get("identity"):
        return {"deny": True}
    return {"user": body["identity"]["sub"], "channels": ["room:lobby"]}


def on_subscribe(body):
    return {"allow": body.get("channel") != "room:staff"}


def on_event(body):
    if body.get("event") != "send":
        return {"error": "bad_request"}
    text = (body.get("payload") or {}).get("text")
    if not isinstance(text, str) or not 0 < len(text) <= 500:
        return {"error": "bad_request"}
    return {"reply": {"ok": True},
            "publish": [{"channel": "room:lobby", "data": {"user": body["identity"]["sub"], "text": text}}]}


ROUTES = {
    "/livegate/connect": on_connect,
    "/livegate/subscribe": on_subscribe,
    "/livegate/event": on_event,
    "/livegate/disconnect": lambda body: {},
}


class Handler(BaseHTTPRequestHandler):
    def send_json(self, status, value):
        data = json.dumps(value).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        files = {"/": ("index.html", "text/html; charset=utf-8"), "/app.js": ("app.js", "text/javascript; charset=utf-8")}
        if self.path == "/config.json":
            return self.send_json(200, {"wsURL": WS_URL})
        if self.path not in files:
            return self.send_json(404, {"error": "not found"})
        name, ctype = files[self.path]
        data = (CHAT_PAGE / name).read_bytes()
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Content-Security-Policy", "default-src 'self'; connect-src 'self' " + WS_URL.split("/ws")[0])
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):
        try:
            length = int(self.headers.get("Content-Length", "0"))
        except ValueError:
            return self.send_json(400, {"error": "bad length"})
        if length < 0 or length > MAX_BODY:
            return self.send_json(413, {"error": "too large"})
        raw = self.rfile.read(length)
        # The page's own calls are JSON, which another site's page cannot
        # send cross-origin without a CORS preflight (never granted here).
        ctype = self.headers.get("Content-Type", "").split(";")[0].strip().lower()
        if self.path in ("/token", "/announce") and ctype != "application/json":
            return self.send_json(415, {"error": "application/json expected"})
        if self.path == "/token":
            from tokens import mint_connect_token  # needs PyJWT

            try:
                user = json.loads(raw).get("user")
            except (ValueError, AttributeError):
                user = None
            if not isinstance(user, str) or not VALID_NAME.fullmatch(user):
                return self.send_json(400, {"error": "bad user name"})
            return self.send_json(200, {"token": mint_connect_token(user, TOKEN_SECRET)})
        if self.path == "/announce":
            try:
                text = str(json.loads(raw).get("text", ""))[:500]
                return self.send_json(200, publish("room:lobby", {"user": "system", "text": text}))
            except Exception as e:  # report, never leak
                logging.error("announce failed: %s", e)
                return self.send_json(502, {"error": "publish failed"})
        route = ROUTES.get(self.path)
        if route is None:
            return self.send_json(404, {"error": "not found"})
        try:
            verify_livegate_request(self.command, self.path, self.headers, raw, PROXY_SECRET)
        except LivegateVerifyError as e:
            logging.warning("refused proxy request: %s", e.code)
            return self.send_json(401, {"error": "unauthorized"})
        try:
            body = json.loads(raw)
        except ValueError:
            return self.send_json(400, {"error": "bad json"})
        return self.send_json(200, route(body))


def main():
    global PROXY_SECRET, TOKEN_SECRET
    PROXY_SECRET = secret_from_env("PROXY_SECRET")
    TOKEN_SECRET = secret_from_env("TOKEN_SECRET")
    if len(PROXY_SECRET.encode()) < 32 or len(TOKEN_SECRET.encode()) < 32:
        sys.exit("PROXY_SECRET(_FILE) and TOKEN_SECRET(_FILE) must each give at least 32 bytes")
    ThreadingHTTPServer(("127.0.0.1", PORT), Handler).serve_forever()


if __name__ == "__main__":
    main()
