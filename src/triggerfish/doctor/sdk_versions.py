"""Is this AWS SDK new enough for IRSA (web identity) and EKS Pod Identity? Read from a user agent, a pip
pin or a credential-chain traceback.

Minimum versions are AWS's published tables (EKS user guide: "Use IRSA with the AWS SDK" and "Use Pod
Identity with the AWS SDK"). A user agent names the SDK and its version (``Boto3/1.26.0``,
``md/Botocore#1.34.0``, ``aws-sdk-java/1.11.500``, ``aws-sdk-go/1.44.0`` ...); a Java traceback tells
an SDK without web identity by the providers its chain lists.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from triggerfish.doctor.report import Check

Version = tuple[int, ...]


@dataclass(frozen=True)
class _Sdk:
    label: str
    web_identity: Version | None  # None: every release has it
    pod_identity: Version | None  # None: not comparable by version (release-dated SDKs); say the date
    pod_identity_note: str = ""
    upgrade: str = ""


_PY = _Sdk("botocore (Python)", (1, 12, 200), (1, 34, 41), upgrade="pip install -U boto3 botocore")
# user-agent product (lower case) -> the SDK; the major version picks between v1 and v2 where they share a name
_BY_PRODUCT: dict[str, tuple[_Sdk, ...]] = {
    "botocore": (_PY,),
    "boto3": (_Sdk("boto3 (Python)", (1, 9, 220), (1, 34, 41), upgrade="pip install -U boto3 botocore"),),
    "aws-cli": (_Sdk("AWS CLI v1", (1, 16, 232), (1, 30, 0)), _Sdk("AWS CLI v2", None, (2, 15, 0))),
    "aws-sdk-java": (_Sdk("AWS SDK for Java v1", (1, 11, 704), (1, 12, 746), upgrade="upgrade com.amazonaws:aws-java-sdk-core "
                          "and add aws-java-sdk-sts"),
                     _Sdk("AWS SDK for Java v2", (2, 10, 11), (2, 21, 30), upgrade="upgrade software.amazon.awssdk (and add "
                          "the sts module)")),
    "aws-sdk-go": (_Sdk("AWS SDK for Go v1", (1, 23, 13), (1, 47, 11)),),
    "aws-sdk-go-v2": (_Sdk("AWS SDK for Go v2", None, None, "a release from 2023-11-14 or later"),),
    "aws-sdk-nodejs": (_Sdk("AWS SDK for JavaScript v2", (2, 525, 0), (2, 1550, 0)),),
    "aws-sdk-js": (_Sdk("AWS SDK for JavaScript v2", (2, 525, 0), (2, 1550, 0)),
                   _Sdk("AWS SDK for JavaScript v3", (3, 27, 0), (3, 458, 0))),
    "aws-sdk-ruby3": (_Sdk("AWS SDK for Ruby v3", (3, 58, 0), (3, 188, 0)),),
    "aws-sdk-php": (_Sdk("AWS SDK for PHP v3", (3, 110, 7), (3, 287, 1)),),
    "aws-sdk-cpp": (_Sdk("AWS SDK for C++", (1, 7, 174), (1, 11, 263)),),
    "aws-sdk-dotnet-coreclr": (_Sdk("AWS SDK for .NET", (3, 3, 659, 1), (3, 7, 734, 0), upgrade="upgrade AWSSDK.Core "
                                    "(and add AWSSDK.SecurityToken)"),),
    "aws-sdk-dotnet-45": (_Sdk("AWS SDK for .NET", (3, 3, 659, 1), (3, 7, 734, 0)),),
    "aws-sdk-kotlin": (_Sdk("AWS SDK for Kotlin", None, (1, 0, 1)),),
    "aws-sdk-rust": (_Sdk("AWS SDK for Rust", None, None, "a release from 2024-03-13 or later"),),
}
_TOKEN = re.compile(r"(?:^|[\s(;,\"'])(?:md/)?(?P<product>[A-Za-z][\w.-]*?)(?:/|#|==)v?(?P<version>\d+(?:\.\d+){1,3})\b")


def _version(text: str) -> Version:
    return tuple(int(x) for x in text.split("."))


def _pick(product: str, version: Version) -> _Sdk | None:
    choices = _BY_PRODUCT.get(product.lower())
    if not choices:
        return None
    if len(choices) == 1:
        return choices[0]
    majors = {"aws-cli": (1, 2), "aws-sdk-java": (1, 2), "aws-sdk-js": (2, 3)}[product.lower()]
    return choices[0] if version[0] <= majors[0] else choices[1]


def _verdict(sdk: _Sdk, shown: str, version: Version) -> Check:
    target = f"{sdk.label} {shown}"
    fix = sdk.upgrade or "upgrade the SDK"
    if sdk.web_identity is not None and version < sdk.web_identity:
        return Check.of("sdk", target, "fail",
                        f"too old for IRSA (web identity needs {'.'.join(map(str, sdk.web_identity))}) and for EKS Pod "
                        "Identity: the pod's role is never used", "", fix)
    if sdk.pod_identity is None:
        note = sdk.pod_identity_note or "every release"
        return Check.of("sdk", target, "ok", f"web identity: supported; EKS Pod Identity needs {note}")
    if version < sdk.pod_identity:
        return Check.of("sdk", target, "warn",
                        f"supports IRSA, but is too old for EKS Pod Identity (needs "
                        f"{'.'.join(map(str, sdk.pod_identity))}): with a Pod Identity association it finds no "
                        "credentials (or rejects the 169.254.170.23 container credentials host)", "",
                        f"{fix}, or use IRSA for this workload")
    return Check.of("sdk", target, "ok", "new enough for IRSA and EKS Pod Identity")


def findings(text: str) -> list[Check]:
    """One row per SDK version named in the text, and what a Java credential-chain error says of its SDK."""
    out: list[Check] = []
    seen: set[str] = set()
    for m in _TOKEN.finditer(text):
        version = _version(m.group("version"))
        sdk = _pick(m.group("product"), version)
        if sdk is None or sdk.label in seen:
            continue
        seen.add(sdk.label)
        out.append(_verdict(sdk, m.group("version"), version))
    if "the 'sts' service module must be on the class path" in text:
        out.append(Check.of("sdk", "AWS SDK for Java v2", "fail",
                            "web identity (IRSA) is unavailable: the sts module is not on the class path", "",
                            "add the software.amazon.awssdk:sts dependency"))
    v1_chain = re.search(r"Unable to load AWS credentials from any provider in the chain: \[(?P<chain>.*)", text, re.DOTALL)
    if v1_chain and "WebIdentityTokenCredentialsProvider" not in v1_chain.group("chain"):
        out.append(Check.of("sdk", "AWS SDK for Java v1", "fail",
                            "its credential chain has no WebIdentityTokenCredentialsProvider: older than 1.11.704, or "
                            "aws-java-sdk-sts is missing, so IRSA is never tried", "",
                            "upgrade com.amazonaws:aws-java-sdk-core to >= 1.11.704 and add aws-java-sdk-sts"))
    return out
