"""``doctor explain "<error text>"``: recognise a pasted error and say its causes, what to check, and the
command that checks it.

Knows Lambda's ``PROBLEM:`` texts (taken from :mod:`triggerfish.esm.problems`, not re-typed),
librdkafka's per-stage messages, the HTTP bridge's error bodies, and AWS SDK credential/endpoint errors.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from triggerfish.doctor import sdk_versions
from triggerfish.doctor.report import Check
from triggerfish.esm import problems as p

_KAFKA = "triggerfish doctor kafka --bootstrap {server}"
_KAFKA_AUTH = _KAFKA + " --auth {auth} --topic {topic}"
_NETWORK = "triggerfish doctor aws-network --input <dir of AWS CLI exports> --msk-esm"
_CREDS = "triggerfish doctor aws-credentials --call-sts"


@dataclass(frozen=True)
class _Signature:
    id: str
    pattern: str
    stage: str
    meaning: str
    causes: tuple[str, ...]
    checks: tuple[str, ...]
    command: str
    harmless: bool = False  # a warning that needs no action: reported ok, so it never hides the real error

    def regex(self) -> re.Pattern[str]:
        return re.compile(self.pattern, re.IGNORECASE | re.DOTALL)


def _problem(text: str) -> str:
    """A Lambda PROBLEM text as a pattern: with or without the prefix and the final full stop."""
    core = text.removeprefix("PROBLEM: ").rstrip(".")
    return r"(?:PROBLEM:\s*)?" + re.escape(core).replace(r"\ ", r"\s+")


_SIGNATURES: tuple[_Signature, ...] = (
    # --- Lambda's PROBLEM texts ------------------------------------------------------------------------
    _Signature("PROBLEM: endpoints cannot be resolved", _problem(p.ENDPOINTS_UNRESOLVED), "dns",
              "the ESM could not resolve the broker host names",
              ("a typo in KAFKA_BOOTSTRAP_SERVERS", "private names that only the brokers' VPC/cluster DNS knows",
               "the VPC has enableDnsSupport off or no private hosted zone association"),
              ("nslookup each bootstrap host from the ESM's subnet", "compare with the brokers' advertised.listeners"),
              _KAFKA),
    _Signature("PROBLEM: connection error (VPC endpoints)",
              r"(?:" + _problem(p.CONNECTION_ERROR_VPC) + r")|Your (?:event source )?VPC must be able to connect to Lambda and STS",
              "network", "the ESM's VPC cannot reach the Lambda, STS or Secrets Manager endpoints (or the on-failure destination)",
              ("no NAT gateway route and no interface VPC endpoints for lambda, sts, secretsmanager",
               "an endpoint's security group doesn't allow tcp/443 from the ESM's (the MSK cluster's) security group",
               "an endpoint policy denies sts:AssumeRole or lambda:InvokeFunction to lambda.amazonaws.com"),
              ("route tables of the ESM subnets: 0.0.0.0/0 -> nat-?", "describe-vpc-endpoints for com.amazonaws.<region>.sts/lambda/secretsmanager"),
              _NETWORK),
    _Signature("PROBLEM: connection error", _problem(p.CONNECTION_ERROR), "tcp",
              "the ESM could not connect to the brokers, or a broker could not complete the request",
              ("a security group without the broker port from the ESM's group (for MSK: no self-referencing rule)",
               "network ACLs blocking the port or the 1024-65535 return traffic", "no route to the brokers' subnets",
               "the cluster is offline or overloaded (disk full, CPU at 100%)"),
              ("static reachability from the exported security groups, ACLs and routes", "per-broker DNS/TCP/TLS from a host in the same subnet"),
              _NETWORK + "   # then, from a host in the same subnet: " + _KAFKA),
    _Signature("PROBLEM: certificate/key not PEM", _problem(p.NOT_PEM), "secret",
              "the certificate or private key in the secret is not PEM",
              ("DER or PKCS#12 material stored in the secret", "the PEM lost its line breaks when pasted into JSON"),
              ("the secret's certificate starts with -----BEGIN CERTIFICATE-----", "privateKey starts with -----BEGIN PRIVATE KEY-----"),
              _KAFKA_AUTH),
    _Signature("PROBLEM: certificate or key invalid", _problem(p.INVALID_CERTIFICATE), "secret",
              "the client certificate or private key can't be used",
              ("the key is PKCS#1 or PBES2-encrypted (use PKCS#8 with PBES1)", "the key does not belong to the certificate",
               "a wrong privateKeyPassword"),
              ("openssl pkcs8 -topk8 -in key.pem -v1 PBE-SHA1-3DES", "openssl x509 -noout -modulus vs openssl rsa -noout -modulus"),
              _KAFKA_AUTH),
    _Signature("PROBLEM: TLS authentication", r"Server\s+failed\s+to\s+authenticate\s+Lambda\s+or\s+Lambda\s+failed", "tls",
              "TLS authentication failed in one direction or the other",
              ("the broker certificate is signed by a CA Lambda doesn't trust (no SERVER_ROOT_CA_CERTIFICATE)",
               "the broker certificate's SAN lacks the broker host name", "mTLS: no client certificate, or its CA isn't trusted by the broker"),
              ("a TLS probe with the same CA and host name tells unknown CA / hostname / expiry apart",),
              _KAFKA_AUTH),
    _Signature("Server failed to authenticate Lambda", r"Server\s+failed\s+to\s+authenticate\s+Lambda(?!\s+or)", "tls",
              "the broker rejected the ESM's TLS client authentication (mTLS)",
              ("no CLIENT_CERTIFICATE_TLS_AUTH secret while the listener requires client certificates",
               "a client certificate was given but the brokers don't do mTLS on that port",
               "the brokers don't trust the CA that issued the client certificate"),
              ("the broker's ssl.client.auth and ssl.truststore", "the client certificate's issuer"),
              _KAFKA_AUTH),
    _Signature("Lambda failed to authenticate server", r"(?<!or )Lambda\s+failed\s+to\s+authenticate\s+server", "tls",
              "the ESM did not accept the broker's certificate",
              ("a private or self-signed CA without SERVER_ROOT_CA_CERTIFICATE, or the wrong root in it",
               "the certificate lacks the broker's DNS name/IP in its SAN (hostname verification)", "an expired certificate"),
              ("the TLS stage of doctor kafka prints the verify code: 20/19/18 CA, 62/64 host name, 10/9 validity",),
              _KAFKA_AUTH),
    _Signature("PROBLEM: SASL authentication failed", _problem(p.SASL_AUTHENTICATION), "sasl",
              "the broker refused the SASL login",
              ("wrong username/password in the secret, or the SCRAM user doesn't exist for that mechanism",
               "MSK IAM: the role lacks kafka-cluster:Connect on the cluster ARN",
               "intermittent: MSK's TCP-connection quota was hit (retries recover)"),
              ("log in with the same secret", "for IAM, the role's policy and the cluster ARN"),
              _KAFKA_AUTH),
    _Signature("PROBLEM: cluster failed to authorize", _problem(p.AUTHORIZATION), "topic",
              "the principal lacks ACLs (or IAM actions) the ESM needs",
              ("SCRAM/mTLS: missing Describe+Read on the topic, Describe+Read on the group (the ESM UUID or custom "
               "group id), or DescribeConfigs on the cluster",
               "MSK IAM: missing kafka-cluster:DescribeTopic/ReadData/DescribeGroup/AlterGroup"),
              ("describe the topic and group with authorized operations (KIP-430)",),
              _KAFKA_AUTH + " --group <the ESM UUID or ConsumerGroupId>"),
    _Signature("PROBLEM: failed to assume role", _problem(p.ASSUME_ROLE), "credentials",
              "Lambda could not assume the function's execution role",
              ("STS not reachable from the ESM's VPC", "the role's trust policy lacks lambda.amazonaws.com",
               "a VPC endpoint policy denies sts:AssumeRole"),
              ("the role's AssumeRolePolicyDocument", "the STS endpoint's policy"), _NETWORK),
    _Signature("PROBLEM: function call failed", _problem(p.FUNCTION_CALL), "invoke",
              "the function invocation errored",
              ("the handler raised or timed out", "throttling, or a deleted function/version/alias"),
              ("the function's log",), "triggerfish invoke <function> --payload event.json"),
    _Signature("PROBLEM: Lambda internal error", _problem(p.INTERNAL), "service",
              "a service-side error", ("not caused by your configuration",), ("retry; contact support if it persists",), ""),
    # --- the HTTP bridge ------------------------------------------------------------------------------
    _Signature("bridge: Kafka denied an ACL", r"Kafka denied (?P<op>\w+) on (?:the cluster|(?:topic|group) '[^']*') to principal", "bridge",
              "the bridge's Kafka principal lacks an ACL", ("the KafkaUser's ACLs lack the operation named",),
              ("the ACL command in the message",), "triggerfish doctor kafka --bridge-config bridge.properties --topic <topic>"),
    _Signature("bridge: topic metadata needs DescribeConfigs (Strimzi 500)",
              r'GET\s+/topics/(?P<topic>[^/\s?"]+)(?!/).*Topic authorization failed'
              r'|"error_code"\s*:\s*500\s*,\s*"message"\s*:\s*"Topic authorization failed\.?"',
              "bridge", "GET /topics/<topic> answers 500 Topic authorization failed: the bridge reads the topic's "
              "configs (describeConfigs), and its principal lacks DescribeConfigs on the topic",
              ("the KafkaUser has Read/Write (which imply Describe) but not DescribeConfigs: producing and consuming work, "
               "topic metadata does not", "DescribeConfigs is a separate ACL operation; only AlterConfigs implies it"),
              ("kafka-acls --list --topic <topic> shows no DescribeConfigs for the bridge's principal",
               "add it: KafkaUser spec.authorization.acls: {resource: {type: topic, name: <topic>}, operations: "
               "[DescribeConfigs]}, or kafka-acls --add --allow-principal User:<bridge> --operation DescribeConfigs "
               "--topic <topic>"),
              "triggerfish doctor kafka --bridge-config bridge.properties --topic {topic}"),
    _Signature("bridge: topic authorization (Strimzi 500)", r'"error_code"\s*:\s*500.*Not authorized to access topics',
              "bridge", "Strimzi reports a missing topic ACL as 500 (a per-record error in a 200 produce answer)",
              ("the bridge's KafkaUser lacks Write/Read/Describe on the topic",), ("the KafkaUser's acls",),
              "triggerfish doctor kafka --bridge-config bridge.properties --topic <topic>"),
    _Signature("bridge: own credentials rejected", r"Kafka rejected the bridge's own credentials", "bridge",
              "the bridge can't log in to Kafka", ("kafka.sasl.jaas.config / kafka.ssl.* settings are wrong",), ("the bridge's properties",),
              "triggerfish doctor kafka --bridge-config bridge.properties"),
    _Signature("bridge: Kafka unavailable", r"Kafka is not available to the bridge", "bridge",
              "the bridge can't reach Kafka", ("kafka.bootstrap.servers unreachable from the bridge",), ("per-broker reachability",),
              "triggerfish doctor kafka --bridge-config bridge.properties"),
    _Signature("bridge: consumer instance not found", r"The specified consumer instance was not found", "bridge",
              "the consumer instance doesn't exist (any more)",
              ("it expired after http.timeoutSeconds / consumer timeout without a poll", "the request went to another bridge replica",
               "it was deleted"), ("create the consumer again and poll more often",), ""),
    _Signature("bridge: consumer name taken", r"A consumer instance with the specified name already exists", "bridge",
              "a consumer with that name exists in the group", ("a previous run didn't DELETE its instance",), ("DELETE it or use another name",), ""),
    _Signature("bridge: overloaded", r"Bridge is overloaded, please retry later", "bridge", "the bridge's work queue is full",
              ("more concurrent requests than bridge.executor.queue.size",), ("retry with backoff",), ""),
    # --- client configuration -----------------------------------------------------------------------
    _Signature("librdkafka: property for the other client kind (harmless)",
              r"Configuration property \S+ is a (?:consumer|producer) property and will be ignored by this "
              r"(?:producer|consumer) instance|Configuration property \S+ is not known", "config",
              "harmless: librdkafka ignores a property that does not apply to this client (a warning, not the error)",
              ("a config shared by producer and consumer",), ("nothing to fix; look for the first error line instead",), "",
              harmless=True),
    _Signature("Java client: unused or unknown config (harmless)",
              r"The configuration '[^']+' was supplied but isn't a known config|These configurations '[^']*' were "
              r"supplied but are not used yet", "config",
              "harmless: the Java client (the bridge, Kafka tools) ignores a key it does not use (logged at startup)",
              ("a librdkafka-only or application key in the Java client's properties",),
              ("nothing to fix; look for the first error line instead",), "", harmless=True),
    _Signature("librdkafka: unknown property (fatal)",
              r'No such configuration property: "(?P<prop>[^"]+)"|Java JAAS configuration is not supported'
              r'|Java TrustStores are not supported', "config",
              "librdkafka refuses a property it does not know (or a Java-only one): the client is not created",
              ("a Java client key: sasl.jaas.config -> sasl.mechanism + sasl.username + sasl.password; "
               "ssl.truststore.location -> ssl.ca.location (PEM); ssl.keystore.location -> ssl.certificate.location + "
               "ssl.key.location (PEM); key/value.(de)serializer -> none (the application (de)serializes)",
               "a typo in the property name"),
              ("the librdkafka CONFIGURATION.md list of properties",), "triggerfish doctor kafka --bootstrap <host:port> -X <key=value>"),
    # --- librdkafka -----------------------------------------------------------------------------------
    _Signature("librdkafka _RESOLVE", r"Failed to resolve '(?P<server>[^']+)'|Host resolution failure|_RESOLVE", "dns",
              "the host name does not resolve from here",
              ("a typo", "a private name only resolvable inside the brokers' network", "'Try again': the resolver is unreachable",
               "an advertised listener name that only works inside the cluster"),
              ("nslookup <host>", "the brokers' advertised.listeners"), _KAFKA),
    _Signature("librdkafka connection refused", r"Connect to (?:ipv[46]#)?(?P<server>\S+?) failed: Connection refused|Connection refused",
              "tcp", "the host answered but nothing listens on that port",
              ("wrong port (9092 plaintext, 9094 TLS, 9096 SCRAM, 9098 IAM on MSK)", "the broker is down", "the listener is not enabled"),
              ("ss -ltn on the broker", "the cluster's enabled authentication methods"), _KAFKA),
    _Signature("librdkafka connection timed out",
              r"Connection setup timed out in state CONNECT|failed: Connection timed out|Operation timed out", "tcp",
              "packets are silently dropped on the way to the broker",
              ("a security group without the port", "network ACLs (both directions, ephemeral return ports)",
               "no route (peering/TGW return route)", "a firewall"),
              ("static reachability from exports", "TCP from a host in the same subnet"), _NETWORK),
    _Signature("plaintext client to TLS listener",
              r"connecting to a SSL listener\?|Disconnected.*state APIVERSION_QUERY(?!.*alert)", "tls",
              "a PLAINTEXT client reached a TLS listener",
              ("security.protocol is PLAINTEXT/SASL_PLAINTEXT but the port is a TLS one",),
              ("use SSL / SASL_SSL for this port",), _KAFKA),
    _Signature("TLS client to plaintext listener", r"connecting to a PLAINTEXT broker listener\?", "tls",
              "a TLS client reached a PLAINTEXT listener",
              ("security.protocol SSL/SASL_SSL against a plaintext port",), ("use the TLS port, or PLAINTEXT",), _KAFKA),
    _Signature("SASL listener without SASL", r"broker might require SASL authentication", "sasl",
              "the listener expects SASL but the client didn't authenticate",
              ("security.protocol PLAINTEXT/SSL against a SASL_* listener",), ("set sasl.mechanism and credentials",), _KAFKA_AUTH),
    _Signature("HTTP server, not Kafka", r"Invalid response size 1213486160", "tcp",
              "the port speaks HTTP (1213486160 is ASCII 'HTTP'), not Kafka",
              ("pointed at an HTTP proxy, load balancer, the Kafka HTTP bridge or a REST proxy",), ("the port",), _KAFKA),
    _Signature("TLS certificate verify failed", r"certificate verify failed|Failed to verify broker certificate", "tls",
              "the client did not accept the broker's certificate (librdkafka prints the same text for every cause)",
              ("unknown CA: ssl.ca.location lacks the issuer or an intermediate (verify code 20/19)",
               "host name mismatch: the SAN doesn't cover the name connected to; librdkafka >= 2.0 checks it (62/64)",
               "expired or not yet valid certificate (10/9)"),
              ("a Python ssl probe with the same CA file and host name gives the verify code",), _KAFKA + " -X ssl.ca.location=<ca.pem>"),
    _Signature("broker sent no certificate", r"Broker did not provide a certificate", "tls",
              "the TLS peer presented no certificate", ("a TLS-terminating proxy or misconfigured listener",), ("the listener's keystore",), _KAFKA),
    _Signature("client certificate required", r"alert (?:handshake failure|certificate required): SSL alert number (?:40|116)|client SSL authentication might be required",
              "tls", "the broker requires a client certificate and none was sent (mTLS listener)",
              ("ssl.certificate.location / ssl.key.location not set", "the wrong port (the mTLS listener)"),
              ("the client's certificate settings",), _KAFKA + " -X ssl.certificate.location=<cert.pem> -X ssl.key.location=<key.pem>"),
    _Signature("client certificate rejected", r"alert (?:unknown ca|bad certificate|certificate unknown): SSL alert number (?:48|42|46)",
              "tls", "the broker rejected the client certificate",
              ("the broker's truststore lacks the CA that issued the client certificate", "an expired client certificate"),
              ("openssl x509 -in client.pem -noout -issuer -enddate",), _KAFKA),
    _Signature("SASL mechanism not enabled", r"Unsupported SASL mechanism", "sasl",
              "the broker doesn't enable that SASL mechanism",
              ("SCRAM-SHA-256 against MSK (MSK enables SCRAM-SHA-512 only)", "PLAIN/SCRAM mix-up"),
              ("the broker's 'supported mechanisms' list in the message",), _KAFKA_AUTH),
    _Signature("SCRAM bad credentials", r"invalid credentials with SASL mechanism (?P<mech>SCRAM-SHA-(?:256|512))", "sasl",
              "the SCRAM login failed (Kafka keeps the reason generic on purpose)",
              ("wrong password", "the user doesn't exist, or has credentials only for the other SCRAM mechanism",
               "MSK: the secret isn't associated with the cluster, or a password change is still propagating (~10 min)"),
              ("kafka-configs --describe --entity-type users --entity-name <user>",), _KAFKA_AUTH),
    _Signature("PLAIN bad credentials", r"Invalid username or password", "sasl", "the PLAIN login failed",
              ("wrong username or password",), ("the BASIC_AUTH secret",), _KAFKA_AUTH),
    _Signature("MSK IAM access denied", r"SASL authentication error: \[[0-9a-f-]+\]: Access denied|SaslAuthenticationException.*Access denied",
              "sasl", "MSK IAM authentication was denied",
              ("the role lacks kafka-cluster:Connect on the cluster ARN", "wrong region signing the token",
               "expired credentials", "kafka:* (control plane) granted instead of kafka-cluster:*"),
              ("the role's policy against arn:aws:kafka:<region>:<acct>:cluster/<name>/<uuid>",), _CREDS),
    _Signature("OAUTHBEARER token", r"Failed to acquire SASL OAUTHBEARER token|OAUTHBEARER cannot log in because there is no token", "sasl",
              "the OAUTHBEARER token callback failed",
              ("no AWS credentials for the MSK IAM signer", "the callback returned the expiry in milliseconds instead of seconds"),
              ("the credential chain",), _CREDS),
    _Signature("topic authorization failed",
              r"(?:Subscribed topic not available: (?P<topic>[^:\s]+): Broker: )?Topic authorization failed"
              r"|TOPIC_AUTHORIZATION_FAILED|TopicAuthorizationException|Not authorized to access topics: \[(?P<topic2>[^\]]+)\]",
              "topic", "the principal may not Describe/Read the topic",
              ("no Describe/Read ACL on the topic for the principal", "the topic name in the ACL differs (prefix/literal)",
               "note: without Describe a missing topic looks the same (topic names are treated as sensitive)"),
              ("kafka-acls --list --topic <topic>",), _KAFKA_AUTH),
    _Signature("group authorization failed", r"Group authorization failed|GROUP_AUTHORIZATION_FAILED|GroupAuthorizationException", "group",
              "the principal may not Read the consumer group",
              ("no Read ACL on the group (for an ESM: its UUID or the custom ConsumerGroupId)",),
              ("kafka-acls --list --group <group>",), _KAFKA_AUTH + " --group <group>"),
    _Signature("cluster authorization failed", r"Cluster authorization failed|CLUSTER_AUTHORIZATION_FAILED", "topic",
              "a cluster-level operation was denied",
              ("an ESM with SCRAM/mTLS needs DescribeConfigs on the cluster", "admin APIs need cluster ACLs"),
              ("kafka-acls --list --cluster",), _KAFKA_AUTH),
    _Signature("unknown topic", r"(?:Subscribed topic not available: (?P<topic>[^:\s]+): Broker: )?Unknown topic or partition|UNKNOWN_TOPIC_OR_PART", "topic",
              "the topic does not exist (or, without Describe, looks like it doesn't)",
              ("a typo in the topic name", "the topic was never created (auto-creation is off)"),
              ("kafka-topics --describe --topic <topic>",), _KAFKA_AUTH),
    _Signature("leader not available", r"Leader not available|LEADER_NOT_AVAILABLE", "topic",
              "the topic was just created or its partitions are offline",
              ("auto-created a moment ago", "brokers down"), ("retry; kafka-topics --describe",), _KAFKA_AUTH),
    _Signature("all brokers down (a consequence)", r"All broker connections are down|\d+/\d+ brokers are down|_ALL_BROKERS_DOWN", "tcp",
              "every broker connection failed: this is a consequence, the cause is in the per-broker error before it",
              ("see the preceding DNS/TCP/TLS/SASL error",), ("run the staged check",), _KAFKA),
    _Signature("metadata timeout (generic)", r"Failed to get metadata: Local: Broker transport failure|Broker transport failure|_TRANSPORT", "tcp",
              "a generic transport failure: DNS, TCP, TLS or SASL may be behind it",
              ("any stage; librdkafka reports the detail only in its log",), ("run the staged check per broker",), _KAFKA),
    # --- AWS SDK ----------------------------------------------------------------------------------------
    _Signature("NoCredentialsError", r"NoCredentialsError|Unable to locate credentials|NoCredentialProviders|no EC2 IMDS role found",
              "credentials", "no provider in the SDK's credential chain returned credentials",
              ("no IRSA/Pod Identity env vars (the webhook only mutates pods at creation)", "an SDK too old for web identity / Pod Identity",
               "IMDS unreachable from the pod: hop limit 1 with IMDSv2 required"),
              ("the chain walk, the token file, IMDS",), "triggerfish doctor aws-credentials"),
    _Signature("PartialCredentialsError", r"PartialCredentialsError|Partial credentials found", "credentials",
              "half of a key pair is set", ("AWS_ACCESS_KEY_ID without AWS_SECRET_ACCESS_KEY or the reverse",), ("env | grep AWS_",),
              "triggerfish doctor aws-credentials"),
    _Signature("CredentialRetrievalError", r"CredentialRetrievalError|Error when retrieving credentials from", "credentials",
              "a configured provider failed", ("the Pod Identity agent unreachable", "the web-identity token file unreadable"),
              ("the provider named in the message",), "triggerfish doctor aws-credentials"),
    _Signature("unsupported container credentials host", r"Unsupported host '", "credentials",
              "the SDK refuses the container credentials URI host", ("an SDK older than EKS Pod Identity support",),
              ("upgrade the SDK (boto3 >= 1.34.41)",), "triggerfish doctor aws-credentials"),
    _Signature("EndpointConnectionError", r"EndpointConnectionError|Could not connect to the endpoint URL", "endpoint",
              "the SDK could not connect to the service endpoint",
              ("DNS: CoreDNS / VPC resolver, private DNS off on the VPC endpoint", "no NAT gateway and no interface endpoint",
               "the global sts.amazonaws.com from a VPC with only a regional STS endpoint"),
              ("resolve and connect to the endpoint URL the SDK builds",), "triggerfish doctor aws-credentials --service sts"),
    _Signature("connect/read timeout", r"ConnectTimeoutError|Connect timeout on endpoint URL|ReadTimeoutError|connect ETIMEDOUT", "endpoint",
              "packets to the endpoint are dropped",
              ("security group / NACL / no route", "a VPC function without NAT calling a public endpoint"),
              ("static reachability from the exports",), _NETWORK.replace(" --msk-esm", " --lambda-config function.json")),
    _Signature("no OIDC provider", r"No OpenIDConnect provider found in your account for (?P<issuer>\S+)", "trust-policy",
              "the IAM OIDC provider for the cluster's issuer is missing (or in another account)",
              ("eksctl utils associate-iam-oidc-provider was never run for this cluster",), ("aws iam list-open-id-connect-providers",),
              "eksctl utils associate-iam-oidc-provider --cluster <cluster> --approve"),
    _Signature("invalid identity token", r"InvalidIdentityToken|could not be validated|Incorrect token audience", "trust-policy",
              "STS rejected the token itself (not a sub mismatch)", ("issuer/thumbprint problem", "the token's audience isn't the provider's client id"),
              ("decode the token: iss, aud",), "triggerfish doctor aws-credentials --trust-policy role.json"),
    _Signature("AccessDenied on AssumeRoleWithWebIdentity", r"AccessDenied.*AssumeRoleWithWebIdentity|Not authorized to perform sts:AssumeRoleWithWebIdentity",
              "trust-policy", "the role's trust policy does not admit this token",
              ("Principal.Federated is another cluster's OIDC provider", ":sub isn't system:serviceaccount:<ns>:<sa> (case-sensitive)",
               ":aud isn't sts.amazonaws.com, or :aud was used where :sub was meant"),
              ("compare the token's iss/sub/aud with the trust policy",), "triggerfish doctor aws-credentials --trust-policy role.json"),
    _Signature("expired token", r"ExpiredToken", "credentials", "the token or session has expired",
              ("a stale projected token (kubelet refresh, clock skew)", "long-lived session credentials"), ("date; the token's exp",),
              "triggerfish doctor aws-credentials"),
    _Signature("UnauthorizedOperation / AccessDenied on the call", r"UnauthorizedOperation|AccessDeniedException|\(AccessDenied\) when calling the (?!AssumeRoleWithWebIdentity)",
              "permissions", "credentials work, but the identity's policy lacks the action",
              ("the role's permissions policy lacks the action named", "a permissions boundary or SCP denies it"),
              ("who am I (sts get-caller-identity) and that identity's policies",), _CREDS),
    _Signature("Lambda Hyperplane ENI limit", r"ENILimitReachedException|EniLimitExceeded|maximum limit for Lambda HyperPlane ENIs", "lambda-vpc",
              "the VPC's Lambda Hyperplane ENI quota is used up", ("too many distinct subnet + security-group combinations",),
              ("count ENIs with InterfaceType lambda",), "triggerfish doctor lambda-vpc --input <dir> --lambda-config function.json"),
    _Signature("Lambda subnet out of IPs", r"SubnetIPAddressLimitReachedException|SubnetOutOfIPAddresses", "lambda-vpc",
              "a function subnet has no free IP address", ("small subnets shared with other workloads",), ("AvailableIpAddressCount",),
              "triggerfish doctor lambda-vpc --input <dir> --lambda-config function.json"),
    _Signature("Lambda ENI permissions", r"EC2AccessDeniedException|InsufficientRolePermissions|Need additional permissions to configure VPC",
              "lambda-vpc", "the execution role can't manage ENIs",
              ("missing ec2:CreateNetworkInterface / DescribeNetworkInterfaces / DeleteNetworkInterface",), ("attach AWSLambdaVPCAccessExecutionRole",),
              "triggerfish doctor lambda-vpc --input <dir> --lambda-config function.json --role-policy policy.json"),
    _Signature("Lambda task timed out", r"Task timed out after [\d.]+ seconds", "lambda-vpc",
              "the function ran out of time, often waiting on a network call that never connects",
              ("a VPC function calling a public endpoint without NAT or a VPC endpoint", "a slow downstream"),
              ("the internet/NAT question for the function's subnets",), "triggerfish doctor lambda-vpc --input <dir> --lambda-config function.json"),
)

_COMPILED = [(s, s.regex()) for s in _SIGNATURES]
_SERVER = re.compile(r"(?P<host>[A-Za-z0-9][A-Za-z0-9.-]*[A-Za-z0-9]):(?P<port>\d{2,5})\b")


def _fill(command: str, text: str, groups: dict[str, str]) -> str:
    values = {"server": "<host:port>", "topic": "<topic>", "auth": "<TYPE>=<secret ref>"}
    server = _SERVER.search(text)
    if server:
        values["server"] = server.group(0)
    # Alternatives can't share a group name, so "topic2" fills "topic" too.
    values.update({k.rstrip("0123456789"): v for k, v in groups.items() if v and k.rstrip("0123456789") in values})
    if "mech" in groups and groups["mech"]:
        values["auth"] = f"SASL_SCRAM_{groups['mech'].rsplit('-', 1)[1]}_AUTH=<secret ref>"
    values["server"] = values["server"].split("/", 1)[0]
    return command.format(**values)


def explain(text: str) -> list[Check]:
    """Every signature the text matches, as checks (status warn); one ``fail`` check when nothing matches."""
    out: list[Check] = []
    for sig, rx in _COMPILED:
        m = rx.search(text)
        if not m:
            continue
        causes = "; ".join(f"({i}) {c}" for i, c in enumerate(sig.causes, 1))
        command = _fill(sig.command, text, m.groupdict()) if sig.command else ""
        fix = "check: " + "; ".join(sig.checks) + (f"  run: {command}" if command else "")
        out.append(Check.of(sig.stage, sig.id, "ok" if sig.harmless else "warn", sig.meaning, f"causes: {causes}", fix))
    out.extend(sdk_versions.findings(text))  # an SDK named with its version (user agent, pip pin) or by its chain
    if not out:
        out.append(Check.of("explain", "unrecognised", "fail", "no known error signature matches this text",
                            "known: Lambda PROBLEM texts, librdkafka errors, HTTP bridge errors, AWS SDK credential/endpoint errors",
                            "paste the first error line (not the '... brokers are down' summary); or run triggerfish doctor kafka"))
    return out
