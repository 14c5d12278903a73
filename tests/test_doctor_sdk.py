"""Minimum AWS SDK versions for IRSA and EKS Pod Identity, recognised from user agents, pip pins and Java chains.

The user agents are the formats the SDKs send (botocore's, this venv's own, is one of them).
"""

from __future__ import annotations

import botocore.session
import pytest

from triggerfish.doctor.explain import explain
from triggerfish.doctor.sdk_versions import findings


def verdicts(text: str) -> dict[str, str]:
    return {c.target: c.status for c in findings(text)}


@pytest.mark.parametrize(("text", "expected"), [
    ("Boto3/1.9.100 Python/3.7.3 Linux/4.14.133-113.105.amzn2.x86_64 Botocore/1.12.100",
     {"boto3 (Python) 1.9.100": "fail", "botocore (Python) 1.12.100": "fail"}),
    ("Boto3/1.28.0 md/Botocore#1.31.0 ua/2.0 os/linux#5.10.186 md/arch#x86_64 lang/python#3.11.4 md/pyimpl#CPython "
     "cfg/retry-mode#legacy Botocore/1.31.0", {"boto3 (Python) 1.28.0": "warn", "botocore (Python) 1.31.0": "warn"}),
    ("aws-sdk-java/1.11.500 Linux/4.14.138 OpenJDK_64-Bit_Server_VM/11.0.4+11 java/11.0.4 vendor/Amazon.com_Inc.",
     {"AWS SDK for Java v1 1.11.500": "fail"}),
    ("aws-sdk-java/2.20.0 Linux/5.10.186 OpenJDK_64-Bit_Server_VM/17.0.8+7 Java/17.0.8 vendor/Eclipse_Adoptium "
     "io/sync http/Apache cfg/retry-mode/legacy", {"AWS SDK for Java v2 2.20.0": "warn"}),
    ("aws-sdk-go/1.44.100 (go1.19.3; linux; amd64)", {"AWS SDK for Go v1 1.44.100": "warn"}),
    ("aws-sdk-js/3.470.0 ua/2.0 os/linux#5.10.186 lang/js md/nodejs#18.17.0 api/sts#3.470.0",
     {"AWS SDK for JavaScript v3 3.470.0": "ok"}),
    ("boto3==1.34.41\nbotocore==1.34.41", {"boto3 (Python) 1.34.41": "ok", "botocore (Python) 1.34.41": "ok"}),
])
def test_user_agents_and_pins(text: str, expected: dict[str, str]) -> None:
    assert verdicts(text) == expected


def test_this_venvs_own_user_agent_is_new_enough() -> None:
    agent = botocore.session.get_session().user_agent()
    rows = findings(agent)
    assert rows and all(c.status == "ok" for c in rows), (agent, rows)


def test_pod_identity_warning_says_what_happens_and_the_way_out() -> None:
    [row] = findings("aws-sdk-java/2.20.0 Linux/5.10")
    assert "too old for EKS Pod Identity (needs 2.21.30)" in row.problem and row.fix.endswith("or use IRSA for this workload")


def test_java_chains_without_web_identity() -> None:
    v2 = ("software.amazon.awssdk.core.exception.SdkClientException: Unable to load credentials from any of the "
          "providers in the chain AwsCredentialsProviderChain(credentialsProviders=[SystemPropertyCredentialsProvider(), "
          "EnvironmentVariableCredentialsProvider(), WebIdentityTokenCredentialsProvider(), ProfileCredentialsProvider"
          "(profileName=default), ContainerCredentialsProvider(), InstanceProfileCredentialsProvider()]) : "
          "[WebIdentityTokenCredentialsProvider(): To use web identity tokens, the 'sts' service module must be on the "
          "class path.]")
    assert verdicts(v2) == {"AWS SDK for Java v2": "fail"}
    old = ("com.amazonaws.SdkClientException: Unable to load AWS credentials from any provider in the chain: "
           "[EnvironmentVariableCredentialsProvider: Unable to load AWS credentials from environment variables, "
           "SystemPropertiesCredentialsProvider: Unable to load AWS credentials from Java system properties, "
           "com.amazonaws.auth.profile.ProfileCredentialsProvider@6d4b1c02: profile file cannot be null, "
           "com.amazonaws.auth.EC2ContainerCredentialsProviderWrapper@4b0b0854: Unable to load credentials from service "
           "endpoint]")
    assert verdicts(old) == {"AWS SDK for Java v1": "fail"}
    assert verdicts(old.replace("profile file cannot be null,", "profile file cannot be null, "
                                "WebIdentityTokenCredentialsProvider: You must specify a value for roleArn,")) == {}


def test_explain_adds_the_sdk_row_to_the_error() -> None:
    text = ("botocore.exceptions.NoCredentialsError: Unable to locate credentials\n"
            "User-Agent: Boto3/1.9.100 Python/3.7.3 Linux/4.14 Botocore/1.12.100")
    found = {c.target: c.status for c in explain(text)}
    assert found["NoCredentialsError"] == "warn" and found["botocore (Python) 1.12.100"] == "fail"
