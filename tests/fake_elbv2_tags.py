"""ELBv2 ``DescribeTags`` on the wire (query protocol, XML), with the one behaviour moto lacks.

Real ELBv2 fails the whole call with 400 ``LoadBalancerNotFound`` when any ARN in it names a load
balancer that no longer exists; moto answers with empty tags instead. Point boto3 at it with
``AWS_ENDPOINT_URL_ELASTIC_LOAD_BALANCING_V2``.
"""

from __future__ import annotations

import uuid
from urllib.parse import parse_qs
from xml.sax.saxutils import escape

from http_fake import Reply, Request, serve

_NS = "http://elasticloadbalancing.amazonaws.com/doc/2015-12-01/"


class FakeElbv2Tags:
    def __init__(self, tags: dict[str, dict[str, str]]) -> None:
        self.tags = tags  # load balancer ARN -> tags; any other ARN does not exist
        self.calls: list[list[str]] = []
        self.error: tuple[int, str, str] | None = None  # (status, code, message) to answer every call with
        self._server = serve(self._respond)
        self.url = self._server.url

    def close(self) -> None:
        self._server.close()

    def _respond(self, request: Request) -> Reply:
        form = {k: v[0] for k, v in parse_qs(request.body.decode()).items()}
        if form.get("Action") != "DescribeTags":
            return self._error(400, "InvalidAction", f"{form.get('Action')} is not served by this fake")
        arns = [form[k] for k in sorted((k for k in form if k.startswith("ResourceArns.member.")),
                                        key=lambda k: int(k.rsplit(".", 1)[1]))]
        self.calls.append(arns)
        if self.error:
            return self._error(*self.error)
        missing = [a for a in arns if a not in self.tags]
        if missing:
            return self._error(400, "LoadBalancerNotFound", f"Load balancers '[{', '.join(missing)}]' not found")
        members = "".join(
            f"<member><ResourceArn>{escape(arn)}</ResourceArn><Tags>"
            + "".join(f"<member><Key>{escape(k)}</Key><Value>{escape(v)}</Value></member>" for k, v in self.tags[arn].items())
            + "</Tags></member>"
            for arn in arns
        )
        body = (f'<DescribeTagsResponse xmlns="{_NS}"><DescribeTagsResult><TagDescriptions>{members}</TagDescriptions>'
                f"</DescribeTagsResult><ResponseMetadata><RequestId>{uuid.uuid4()}</RequestId></ResponseMetadata>"
                "</DescribeTagsResponse>")
        return Reply(200, {"Content-Type": "text/xml"}, body.encode())

    @staticmethod
    def _error(status: int, code: str, message: str) -> Reply:
        body = (f'<ErrorResponse xmlns="{_NS}"><Error><Type>Sender</Type><Code>{code}</Code>'
                f"<Message>{escape(message)}</Message></Error><RequestId>{uuid.uuid4()}</RequestId></ErrorResponse>")
        return Reply(status, {"Content-Type": "text/xml"}, body.encode())
