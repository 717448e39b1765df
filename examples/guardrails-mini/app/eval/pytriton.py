"""The embedded PyTriton server of a CUDA run, as far as the runner can see it: three ports
(GR_PYTRITON_URL's, GR_PYTRITON_GRPC_PORT, GR_PYTRITON_METRICS_PORT; 8000, 8001, 8002 by default)
held for the whole run. A port in use fails the run at start, as Triton does."""

import os
import socket


def start():
    url = os.environ.get("GR_PYTRITON_URL", "127.0.0.1:8000")
    host, _, http = url.rpartition(":")
    ports = {"http": int(http), "grpc": int(os.environ.get("GR_PYTRITON_GRPC_PORT", "8001")),
             "metrics": int(os.environ.get("GR_PYTRITON_METRICS_PORT", "8002"))}
    sockets = []
    for kind, port in ports.items():
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.bind(("0.0.0.0", port))
            sock.listen(1)
        except OSError as error:
            sock.close()
            for held in sockets:
                held.close()
            raise RuntimeError("embedded PyTriton failed to start: %s port %d: %s" % (kind, port, error.strerror or error)) from error
        sockets.append(sock)
    return {"url": "%s:%d" % (host or "127.0.0.1", ports["http"]), "ports": ports, "sockets": sockets}


def stop(server):
    for sock in server["sockets"]:
        sock.close()
