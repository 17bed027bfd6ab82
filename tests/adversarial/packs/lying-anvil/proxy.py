"""Forward JSON-RPC to anvil, except: refuse about half of the submitted transactions (those
whose raw bytes end in an even hex digit) with {"error": {"message": 0}}, never forwarded."""

import json
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

UPSTREAM = "http://127.0.0.1:8546"


class Proxy(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        try:
            request = json.loads(body)
        except ValueError:
            request = None
        if (isinstance(request, dict) and request.get("method") == "eth_sendRawTransaction"
                and request["params"][0][-1] in "02468ace"):
            self.answer(200, json.dumps({"jsonrpc": "2.0", "id": request.get("id"),
                                         "error": {"message": 0}}).encode())
            return
        upstream = urllib.request.Request(UPSTREAM, data=body,
                                          headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(upstream, timeout=10) as reply:
                self.answer(reply.status, reply.read())
        except OSError as exc:
            self.answer(502, str(exc).encode())

    def answer(self, status, data):
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


ThreadingHTTPServer(("0.0.0.0", 8545), Proxy).serve_forever()
