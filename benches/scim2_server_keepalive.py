"""scim2-server's own command, served over HTTP/1.1 keep-alive (the capacity bench's --keep-alive).

`scim2-server` serves through wsgiref's simple server: HTTP/1.0, one TCP connection per request,
so a client pays a connect and a close for every request. Real SCIM targets keep connections
open. This runs the same command (same arguments, same application, same in-memory storage)
but hands its WSGI application to waitress (`pip install waitress`), which keeps connections
alive, and writes one access-log line per request to stderr in wsgiref's shape, which the bench
counts.

Usage: <scim2-server's venv>/bin/python scim2_server_keepalive.py [scim2-server arguments]
"""

import sys

import waitress
from scim2_server.testserver import cli


def access_logged(app):
    """Log `"METHOD PATH PROTOCOL" STATUS` per request, as wsgiref's handler does."""

    def inner(environ, start_response):
        def logged_start(status, headers, exc_info=None):
            sys.stderr.write(
                '127.0.0.1 - - [-] "%s %s %s" %s -\n'
                % (
                    environ.get("REQUEST_METHOD", "-"),
                    environ.get("PATH_INFO", "-"),
                    environ.get("SERVER_PROTOCOL", "-"),
                    status.split(" ", 1)[0],
                )
            )
            sys.stderr.flush()
            return start_response(status, headers, exc_info)

        return app(environ, logged_start)

    return inner


class KeepAliveServer:
    """What `cli.main` expects of `make_server`'s result: a context manager that serves."""

    def __init__(self, host, port, app):
        # Four worker threads: the bench's default concurrency.
        self.server = waitress.create_server(
            access_logged(app), host=host, port=port, threads=4, ident="scim2-server"
        )

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.server.close()
        return False

    def serve_forever(self):
        self.server.run()


def make_server(host, port, app, server_class=None):
    return KeepAliveServer(host, port, app)


cli.make_server = make_server

if __name__ == "__main__":
    cli.main()
