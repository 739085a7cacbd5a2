"""A local HTTP server for download tests: files by path, with byte ranges, wrong declared
lengths, and connections cut after a number of bytes."""
import collections
import http.server
import re
import sys
import threading
import time

Route = collections.namedtuple("Route", "body status declared cut_at ranges trickle")


def route(body, status=200, declared=None, cut_at=None, ranges=True, trickle=None):
    """``declared``: the Content-Length to claim (default the true one); ``cut_at``: close
    the connection after this many bytes of the body (once; later requests get it whole);
    ``ranges``: honour Range requests; ``trickle``: send one byte every this many seconds."""
    return Route(body, status, declared, cut_at, ranges, trickle)


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        server = self.server
        server.requests.append((self.path, self.headers.get("Range")))
        entry = server.routes.get(self.path)
        if entry is None:
            entry = route(b"not found", status=404)
        body, status, start = entry.body, entry.status, 0
        asked = re.match(r"bytes=(\d+)-$", self.headers.get("Range", ""))
        if status == 200 and entry.ranges and asked:
            start = int(asked.group(1))
            if start >= len(body):
                self.send_response(416)
                self.send_header("Content-Range", "bytes */{}".format(len(body)))
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", "bytes {}-{}/{}".format(
                start, len(body) - 1, len(body)))
        else:
            self.send_response(status)
        part = body[start:]
        declared = len(part) if entry.declared is None else entry.declared
        self.send_header("Content-Length", str(declared))
        self.end_headers()
        if entry.cut_at is not None:
            server.routes[self.path] = entry._replace(cut_at=None)
            self.wfile.write(part[:entry.cut_at])
            self.close_connection = True
            return
        if entry.trickle is not None:
            for k in range(len(part)):
                self.wfile.write(part[k:k + 1])
                self.wfile.flush()
                time.sleep(entry.trickle)
            return
        self.wfile.write(part)
        if declared != len(part):
            self.close_connection = True

    def log_message(self, *args):
        pass


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        if not isinstance(sys.exc_info()[1], ConnectionError):  # a client hanging up is normal
            super().handle_error(request, client_address)


class FileServer(object):
    """``with FileServer() as s``: ``s.routes[path] = route(...)``, ``s.url(path)``,
    ``s.requests`` (path, Range header) in order."""

    def __enter__(self):
        self._httpd = _Server(("127.0.0.1", 0), _Handler)
        self._httpd.routes, self._httpd.requests = {}, []
        self.routes, self.requests = self._httpd.routes, self._httpd.requests
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()
        return self

    def url(self, path=""):
        return "http://127.0.0.1:{}{}".format(self._httpd.server_port, path)

    def __exit__(self, *exc):
        self._httpd.shutdown()
        self._httpd.server_close()
