"""A local fake of MSK's GetBootstrapBrokers (``GET /v1/clusters/{clusterArn}/bootstrap-brokers``), which
moto does not implement. Same wire format as the real API: restJson, camelCase member names."""

from __future__ import annotations

import json
from urllib.parse import unquote

from http_fake import Reply, Request, serve


class FakeMSK:
    """Serves ``clusters[arn] = {"BootstrapBrokerStringSaslIam": "...", ...}`` on 127.0.0.1 (port 0)."""

    def __init__(self) -> None:
        self.clusters: dict[str, dict[str, str]] = {}
        self.requests: list[str] = []
        self.server = serve(self._serve)
        self.url = self.server.url

    def close(self) -> None:
        self.server.close()

    def _serve(self, request: Request) -> Reply:
        self.requests.append(request.path)
        prefix, suffix = "/v1/clusters/", "/bootstrap-brokers"
        path = request.path
        arn = unquote(path[len(prefix):-len(suffix)]) if path.startswith(prefix) and path.endswith(suffix) else ""
        json_type = {"Content-Type": "application/json"}
        if arn not in self.clusters:
            body = {"message": f"Cluster {arn} not found"}
            return Reply(404, {**json_type, "x-amzn-ErrorType": "NotFoundException"}, json.dumps(body).encode())
        return Reply(200, json_type, json.dumps({k[0].lower() + k[1:]: v for k, v in self.clusters[arn].items()}).encode())
