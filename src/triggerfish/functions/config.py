"""``FunctionConfig``: one function as declared under ``Functions:``, with Lambda's field names and limits.

A function is either a Python handler (``CodeUri`` + ``Handler``, run in worker processes) or an
HTTP endpoint (``Url``: the event is POSTed as JSON, 2xx = success). ``from_dict``/``to_dict`` use
Lambda's names so the same dicts travel through YAML and the control API.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from triggerfish.errors import InvalidParameterError
from triggerfish.tags import check_tags
from triggerfish.validation import Fields, check_str

_FUNCTION_NAME_PATTERN = r"[a-zA-Z0-9\-_]+"
_ENV_KEY_PATTERN = r"[a-zA-Z]([a-zA-Z0-9_])+"
_ENV_MAX_BYTES = 4096
_DEFAULT_TIMEOUT = 3
_DEFAULT_MEMORY = 128
#: Kafka event source mappings invoke functions whose timeout is at most 14 minutes.
KAFKA_MAX_TIMEOUT = 840

# Lambda sets these itself; user values are rejected, as Lambda does.
_RESERVED_ENV = frozenset(
    {
        "_HANDLER", "_X_AMZN_TRACE_ID", "AWS_DEFAULT_REGION", "AWS_REGION", "AWS_EXECUTION_ENV",
        "AWS_LAMBDA_FUNCTION_NAME", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "AWS_LAMBDA_FUNCTION_VERSION",
        "AWS_LAMBDA_INITIALIZATION_TYPE", "AWS_LAMBDA_LOG_GROUP_NAME", "AWS_LAMBDA_LOG_STREAM_NAME",
        "AWS_ACCESS_KEY", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
        "AWS_LAMBDA_RUNTIME_API", "LAMBDA_TASK_ROOT", "LAMBDA_RUNTIME_DIR",
    }
)

_FIELDS = (
    "FunctionName", "CodeUri", "Handler", "Runtime", "Description", "Timeout", "MemorySize", "Environment",
    "Url", "FunctionUrlConfig", "ReservedConcurrentExecutions", "Role", "Tags",
)
#: botocore's RoleArn pattern.
_ROLE_PATTERN = r"arn:(aws[a-zA-Z-]*)?:iam::\d{12}:role/?[a-zA-Z_0-9+=,.@\-_/]+"


@dataclass(frozen=True)
class FunctionConfig:
    """A function's configuration. ``code_uri`` is absolute once loaded from a file."""

    function_name: str
    handler: str | None = None
    code_uri: Path | None = None
    runtime: str = "python3.11"
    description: str = ""
    timeout: int = _DEFAULT_TIMEOUT
    memory_size: int = _DEFAULT_MEMORY
    environment: dict[str, str] = field(default_factory=dict)
    #: HTTP-endpoint function: the event is POSTed here instead of running a handler.
    url: str | None = None
    #: ``{"AuthType": "NONE" | "AWS_IAM", ...}`` — the function URL served by the control API (W7).
    function_url_config: dict[str, Any] | None = None
    #: Upper bound on concurrent invocations; None = the runtime's default pool size.
    reserved_concurrent_executions: int | None = None
    #: The execution role's ARN GetFunction shows (None: ``default_role``); triggerfish assumes no role.
    role: str | None = None
    #: The function's tags as the file declares them (TagResource may replace them later).
    tags: dict[str, str] = field(default_factory=dict)

    @property
    def is_http(self) -> bool:
        return self.url is not None

    def arn(self, region: str = "us-east-1", account: str = "000000000000") -> str:
        return f"arn:aws:lambda:{region}:{account}:function:{self.function_name}"

    def role_arn(self, account: str = "000000000000") -> str:
        """``Role``, or the name Lambda's console gives a new function's role when none is declared."""
        return self.role or f"arn:aws:iam::{account}:role/service-role/{self.function_name}-role"

    def replace(self, **changes: Any) -> FunctionConfig:
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_dict(cls, data: Any, *, where: str = "", base_dir: Path | None = None) -> FunctionConfig:
        """Validate a Lambda-shaped dict. Relative ``CodeUri`` is resolved against ``base_dir``."""
        f = Fields(data, where, _FIELDS)
        name = check_str(f.path("FunctionName"), f.require("FunctionName"), min_len=1, max_len=64,
                         pattern=_FUNCTION_NAME_PATTERN, hint="letters, digits, - and _ only, at most 64")
        f.raw("FunctionName")
        url = _url(f)
        handler = f.str_("Handler", min_len=1, max_len=128, pattern=r"[^\s]+", hint="module.function, e.g. app.handler")
        code_uri = f.str_("CodeUri", min_len=1)
        _check_url_or_handler(f, url, handler)
        code_path = _code_path(f, code_uri, base_dir)
        timeout = f.int_("Timeout", 1, 900, _DEFAULT_TIMEOUT)
        memory = f.int_("MemorySize", 128, 10240, _DEFAULT_MEMORY)
        env = _environment(f)
        url_config = _url_config(f)
        reserved = f.int_("ReservedConcurrentExecutions", 0, 100000)
        runtime = f.str_("Runtime", "python3.11")
        description = f.str_("Description", "", max_len=256)
        role = f.str_("Role", pattern=_ROLE_PATTERN, hint="an IAM role ARN, arn:aws:iam::123456789012:role/NAME")
        tags = check_tags(f.dict_("Tags", {}), f.path("Tags"))
        f.done()
        return cls(
            function_name=name, handler=handler, code_uri=code_path, runtime=runtime, description=description,
            timeout=timeout, memory_size=memory, environment=env, url=url, function_url_config=url_config,
            reserved_concurrent_executions=reserved, role=role, tags=tags,
        )

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"FunctionName": self.function_name}
        if self.url is not None:
            out["Url"] = self.url
        else:
            out["Handler"] = self.handler
            if self.code_uri is not None:
                out["CodeUri"] = str(self.code_uri)
            out["Runtime"] = self.runtime
        out.update(Timeout=self.timeout, MemorySize=self.memory_size, Environment={"Variables": dict(self.environment)})
        if self.description:
            out["Description"] = self.description
        if self.function_url_config is not None:
            out["FunctionUrlConfig"] = dict(self.function_url_config)
        if self.reserved_concurrent_executions is not None:
            out["ReservedConcurrentExecutions"] = self.reserved_concurrent_executions
        if self.role is not None:
            out["Role"] = self.role
        if self.tags:
            out["Tags"] = dict(self.tags)
        return out


def _url(f: Fields) -> str | None:
    url = f.str_("Url", min_len=1, max_len=2048)
    if url is not None and not url.startswith(("http://", "https://")):
        raise InvalidParameterError(f.path("Url"), f"Value '{url}' is not an http(s) URL", "use https://host/path")
    return url


def _check_url_or_handler(f: Fields, url: str | None, handler: str | None) -> None:
    """Exactly one of Url and Handler, and a Handler names module.function."""
    if url is None and handler is None:
        raise InvalidParameterError(f.path("Handler"), "Handler is required",
                                    "give Handler (module.function) and CodeUri, or Url for an HTTP function")
    if url is not None and handler is not None:
        raise InvalidParameterError(f.path("Url"), "a function has either Url or Handler, not both",
                                    "remove one of them")
    if handler is not None and "." not in handler:
        raise InvalidParameterError(f.path("Handler"), f"Value '{handler}' is not module.function",
                                    "write Handler as module.function, e.g. orders.handler")


def _code_path(f: Fields, code_uri: str | None, base_dir: Path | None) -> Path | None:
    """``CodeUri`` as an absolute directory that exists (relative paths against ``base_dir``)."""
    if code_uri is None:
        return None
    code_path = Path(code_uri).expanduser()
    if not code_path.is_absolute():
        code_path = (base_dir or Path.cwd()) / code_path
    code_path = code_path.resolve()
    if not code_path.is_dir():
        raise InvalidParameterError(f.path("CodeUri"), f"directory '{code_uri}' does not exist",
                                    f"CodeUri is resolved against {base_dir or Path.cwd()}")
    return code_path


def _url_config(f: Fields) -> dict[str, Any] | None:
    url_config = f.dict_("FunctionUrlConfig")
    if url_config is not None:
        auth = Fields(url_config, f.path("FunctionUrlConfig"), ("AuthType", "Cors", "InvokeMode"))
        auth.enum_("AuthType", ["NONE", "AWS_IAM"], "NONE")
        auth.dict_("Cors")
        auth.enum_("InvokeMode", ["BUFFERED", "RESPONSE_STREAM"])
        auth.done()
    return url_config


def _environment(f: Fields) -> dict[str, str]:
    env = f.dict_("Environment")
    if env is None:
        return {}
    e = Fields(env, f.path("Environment"), ("Variables",))
    variables = e.dict_("Variables", {})
    e.done()
    out: dict[str, str] = {}
    for key, value in variables.items():
        path = f"{e.path('Variables')}.{key}"
        check_str(path, str(key), pattern=_ENV_KEY_PATTERN, hint="names start with a letter; letters, digits and _")
        if key in _RESERVED_ENV:
            raise InvalidParameterError(
                path,
                "Lambda was unable to configure your environment variables because the environment variables you "
                "have provided contains reserved keys that are currently not supported for modification. "
                f"Reserved keys used in this request: {key}",
                "rename the variable",
            )
        if isinstance(value, bool):
            value = str(value).lower()
        if isinstance(value, (dict, list)) or value is None:
            raise InvalidParameterError(path, "environment values must be strings", "quote the value")
        out[str(key)] = str(value)
    size = sum(len(k.encode()) + len(v.encode()) for k, v in out.items())
    if size > _ENV_MAX_BYTES:
        raise InvalidParameterError(
            e.path("Variables"),
            "Lambda was unable to configure your environment variables because the environment variables you have "
            "provided exceeded the 4KB limit. String measured: " + str(size),
            "keep names and values under 4 KB in total",
        )
    return out


def worker_environment(fn: FunctionConfig, region: str | None = None) -> dict[str, str]:
    """The process environment a handler sees: ours, plus Lambda's variables, plus the function's."""
    env = dict(os.environ)
    region = region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
    env.update(
        AWS_LAMBDA_FUNCTION_NAME=fn.function_name,
        AWS_LAMBDA_FUNCTION_MEMORY_SIZE=str(fn.memory_size),
        AWS_LAMBDA_FUNCTION_VERSION="$LATEST",
        AWS_LAMBDA_LOG_GROUP_NAME=f"/aws/lambda/{fn.function_name}",
        AWS_LAMBDA_INITIALIZATION_TYPE="on-demand",
        AWS_EXECUTION_ENV=f"AWS_Lambda_{fn.runtime}",
        AWS_REGION=region,
        AWS_DEFAULT_REGION=region,
        _HANDLER=fn.handler or "",
        LAMBDA_TASK_ROOT=str(fn.code_uri or ""),
    )
    env.update(fn.environment)
    return env
