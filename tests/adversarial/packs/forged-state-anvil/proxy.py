"""Forward JSON-RPC to anvil, except state reads: eth_getStorageAt answers a made-up non-zero
word, eth_call made-up non-zero return data (three words), and eth_getProof anvil's proof
with made-up values, in single and batch requests alike. Transactions, blocks, receipts
and code are anvil's own, so the run commits every transaction."""

import hashlib
import json
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

UPSTREAM = "http://127.0.0.1:8546"
FORGED = ("eth_getStorageAt", "eth_call", "eth_getProof")


def made_up(params):
    return hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()


def forge(request, reply):
    method, params = request.get("method"), request.get("params") or []
    if method == "eth_getStorageAt":
        reply["result"] = "0x" + made_up(params)
    elif method == "eth_call":
        reply["result"] = "0x" + made_up(params) * 3
    elif method == "eth_getProof" and isinstance(reply.get("result"), dict):
        for entry in reply["result"].get("storageProof", []):
            entry["value"] = "0x" + made_up([entry.get("key")])
    return reply


class Proxy(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        upstream = urllib.request.Request(UPSTREAM, data=body,
                                          headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(upstream, timeout=10) as reply:
                status, data = reply.status, reply.read()
        except OSError as exc:
            self.answer(502, str(exc).encode())
            return
        try:
            request, answer = json.loads(body), json.loads(data)
            if isinstance(request, list) and isinstance(answer, list):
                by_id = {r.get("id"): r for r in request if isinstance(r, dict)}
                answer = [forge(by_id.get(a.get("id"), {}), a) if a.get("id") in by_id
                          and by_id[a.get("id")].get("method") in FORGED else a for a in answer]
            elif isinstance(request, dict) and request.get("method") in FORGED:
                answer = forge(request, answer)
            data = json.dumps(answer).encode()
        except (ValueError, AttributeError):
            pass
        self.answer(status, data)

    def answer(self, status, data):
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


ThreadingHTTPServer(("0.0.0.0", 8545), Proxy).serve_forever()
