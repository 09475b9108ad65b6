#!/usr/bin/env python3
"""A torpor object handler in Python, standard library only: a list of notes.

Methods: `add {"text": "..."}` appends a note, `list` returns them with the list's title,
`clear` empties the list. Storage is `{"notes": [{"text": ..., "at": ...}, ...]}`. The title
comes from the NOTES_TITLE environment variable (a class's `env`), "notes" when unset.

It serves the handler contract on the socket passed as TORPOR_LISTEN_FD, or else on the
address in TORPOR_LISTEN. Started by hand without either, it listens on 0.0.0.0:9333.
It stops on SIGTERM, which torpor sends before SIGKILL.
"""

import json
import os
import signal
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

storage = {"notes": []}
lock = threading.Lock()
TITLE = os.environ.get("NOTES_TITLE", "notes")


def add(body):
    text = body.get("text") if isinstance(body, dict) else None
    if not isinstance(text, str) or not text:
        return 400, {"error": 'body must be {"text": "a non-empty string"}'}
    note = {"text": text, "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    storage["notes"].append(note)
    return 200, {"added": note, "count": len(storage["notes"])}


def list_notes(_body):
    return 200, {"title": TITLE, "notes": storage["notes"]}


def clear(_body):
    removed = len(storage["notes"])
    storage["notes"] = []
    return 200, {"removed": removed}


METHODS = {"add": add, "list": list_notes, "clear": clear}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        sys.stderr.write("notes: " + (fmt % args) + "\n")

    def reply(self, status, value):
        data = json.dumps(value).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def read_json(self):
        length = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(length) if length else b""
        if not raw.strip():
            return None
        return json.loads(raw)

    def do_GET(self):
        if self.path == "/__health":
            self.reply(200, {"ok": True})
        elif self.path == "/__storage":
            with lock:
                self.reply(200, storage)
        else:
            self.reply(404, {"error": f"no GET route {self.path}"})

    def do_POST(self):
        global storage
        try:
            body = self.read_json()
        except ValueError as err:
            self.reply(400, {"error": f"request body is not JSON: {err}"})
            return
        if self.path == "/__storage":
            if not isinstance(body, dict) or not isinstance(body.get("notes"), list):
                self.reply(400, {"error": 'storage must be {"notes": [...]}'})
                return
            with lock:
                storage = body
            self.send_response(204)
            self.send_header("content-length", "0")
            self.end_headers()
            return
        method = METHODS.get(self.path.lstrip("/"))
        if method is None:
            self.reply(404, {"error": f"unknown method {self.path.lstrip('/')!r}; notes has add, list and clear"})
            return
        with lock:
            status, value = method(body)
        self.reply(status, value)


def make_server():
    fd = os.environ.get("TORPOR_LISTEN_FD")
    if fd:
        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler, bind_and_activate=False)
        server.socket.close()
        server.socket = socket.socket(fileno=int(fd))
        return server
    host, _, port = os.environ.get("TORPOR_LISTEN", "0.0.0.0:9333").rpartition(":")
    return ThreadingHTTPServer((host, int(port)), Handler)


def main():
    server = make_server()
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    sys.stderr.write(
        f"notes: serving {os.environ.get('TORPOR_CLASS')}/{os.environ.get('TORPOR_OBJECT_ID')}\n"
    )
    server.serve_forever()


if __name__ == "__main__":
    main()
