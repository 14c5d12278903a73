"""Java ``.properties`` files and Kafka config providers (``${env:VAR}``, ``${file:path:key}``, ``${dir:path:key}``).

The Strimzi bridge hands placeholders to the Java Kafka clients, which resolve them through the classes
named in ``config.providers``. librdkafka has no such thing, so the bridge resolves them itself before
any client is built. Both Strimzi's and Kafka's provider class names are accepted.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path

from triggerfish.errors import ConfigError
from triggerfish.settings import Settings

_ENV_PROVIDERS = {
    "io.strimzi.kafka.EnvVarConfigProvider",
    "org.apache.kafka.common.config.provider.EnvVarConfigProvider",
}
_FILE_PROVIDER = "org.apache.kafka.common.config.provider.FileConfigProvider"
_DIRECTORY_PROVIDER = "org.apache.kafka.common.config.provider.DirectoryConfigProvider"
_UNSUPPORTED_PROVIDERS = {
    "io.strimzi.kafka.KubernetesSecretConfigProvider": "mount the Secret as files and use DirectoryConfigProvider",
    "io.strimzi.kafka.KubernetesConfigMapConfigProvider": "mount the ConfigMap as files and use DirectoryConfigProvider",
}

# Kafka's own placeholder grammar: ${provider:[path:]key}
_PLACEHOLDER = re.compile(r"\$\{([^}]*?):(([^}]*?):)?([^}]*?)\}")
_ESCAPES = {"t": "\t", "n": "\n", "r": "\r", "f": "\f"}


def parse(text: str) -> dict[str, str]:
    """Parse Java properties text: ``#``/``!`` comments, ``=``/``:``/space separators, ``\\`` continuations."""
    result: dict[str, str] = {}
    logical: list[str] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.lstrip()
        if not pending and (not line or line[0] in "#!"):
            continue
        # an odd number of trailing backslashes continues the line
        trailing = len(line) - len(line.rstrip("\\"))
        if trailing % 2 == 1:
            pending += line[:-1]
            continue
        logical.append(pending + line)
        pending = ""
    if pending:
        logical.append(pending)
    for line in logical:
        key, value = _split(line)
        result[_unescape(key)] = _unescape(value)
    return result


def _split(line: str) -> tuple[str, str]:
    i = 0
    while i < len(line):
        ch = line[i]
        if ch == "\\":
            i += 2
            continue
        if ch in "=: \t\f":
            break
        i += 1
    key = line[:i]
    rest = line[i:].lstrip(" \t\f")
    if rest[:1] in ("=", ":"):
        rest = rest[1:].lstrip(" \t\f")
    return key, rest


def _unescape(text: str) -> str:
    if "\\" not in text:
        return text
    out: list[str] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text):
            nxt = text[i + 1]
            if nxt == "u" and i + 6 <= len(text):
                out.append(chr(int(text[i + 2:i + 6], 16)))
                i += 6
                continue
            out.append(_ESCAPES.get(nxt, nxt))
            i += 2
            continue
        out.append(ch)
        i += 1
    return "".join(out)


def load(path: str | Path) -> dict[str, str]:
    """Read a properties file; a missing file is a ConfigError naming it."""
    p = Path(path)
    try:
        return parse(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError("--config", f"file {str(p)!r} does not exist; pass the bridge properties file") from None
    except OSError as exc:
        raise ConfigError("--config", f"cannot read {str(p)!r}: {exc.strerror}") from None


class Providers:
    """The config providers declared by ``config.providers`` (Kafka's KIP-297/KIP-421 style)."""

    def __init__(self, props: Mapping[str, str], prefix: str = "kafka.") -> None:
        self._kinds: dict[str, tuple[str, dict[str, str]]] = {}
        names_key = f"{prefix}config.providers"
        settings = Settings(props)
        names = settings.list_(names_key, ())
        for name in names:
            class_key = f"{names_key}.{name}.class"
            cls = settings.str_(class_key)
            if not cls:
                raise ConfigError(class_key, f"provider {name!r} is listed in {names_key} but has no class; "
                                  f"set it to io.strimzi.kafka.EnvVarConfigProvider, {_FILE_PROVIDER} or {_DIRECTORY_PROVIDER}")
            if cls in _UNSUPPORTED_PROVIDERS:
                raise ConfigError(class_key, f"{cls} is not supported; {_UNSUPPORTED_PROVIDERS[cls]}")
            if cls in _ENV_PROVIDERS:
                kind = "env"
            elif cls == _FILE_PROVIDER:
                kind = "file"
            elif cls == _DIRECTORY_PROVIDER:
                kind = "dir"
            else:
                raise ConfigError(class_key, f"unknown config provider class {cls!r}; supported: "
                                  + ", ".join(sorted(_ENV_PROVIDERS | {_FILE_PROVIDER, _DIRECTORY_PROVIDER})))
            param_prefix = f"{names_key}.{name}.param."
            params = {k[len(param_prefix):]: v for k, v in props.items() if k.startswith(param_prefix)}
            known = {"env": {"allowlist.pattern"}, "file": {"allowed.paths"}, "dir": {"allowed.paths"}}[kind]
            for p in params:
                if p not in known:
                    raise ConfigError(param_prefix + p, f"unknown parameter for {cls}; supported: {', '.join(sorted(known))}")
            self._kinds[name] = (kind, params)
        self.declared_keys = {names_key} | {k for k in props if k.startswith(names_key + ".")}

    def resolve(self, key: str, value: str) -> str:
        """Substitute every ``${provider:[path:]key}`` in ``value``; ``key`` names the property in errors."""
        if "${" not in value:
            return value

        def sub(m: re.Match[str]) -> str:
            name, path, item = m.group(1), m.group(3), m.group(4)
            if name not in self._kinds:
                declared = ", ".join(self._kinds) or "none"
                raise ConfigError(key, f"placeholder ${{{name}:...}} names config provider {name!r}, which is not "
                                  f"declared in kafka.config.providers (declared: {declared})")
            kind, params = self._kinds[name]
            if kind == "env":
                return self._env(key, params, item if path is None else f"{path}:{item}")
            if path is None:
                raise ConfigError(key, f"placeholder ${{{name}:{item}}} needs a path: ${{{name}:/path:key}}")
            self._check_path(key, params, path)
            return self._file(key, path, item) if kind == "file" else self._dir(key, path, item)

        return _PLACEHOLDER.sub(sub, value)

    @staticmethod
    def _env(key: str, params: dict[str, str], var: str) -> str:
        pattern = params.get("allowlist.pattern")
        if pattern is not None and not re.fullmatch(pattern, var):
            raise ConfigError(key, f"environment variable {var} is not allowed by allowlist.pattern {pattern!r}")
        if var not in os.environ:
            raise ConfigError(key, f"environment variable {var} is not set (referenced as ${{env:{var}}})")
        return os.environ[var]

    @staticmethod
    def _check_path(key: str, params: dict[str, str], path: str) -> None:
        allowed = Settings(params).list_("allowed.paths", ())
        if not allowed:
            return
        real = os.path.realpath(path)
        if not any(real == os.path.realpath(a) or real.startswith(os.path.realpath(a) + os.sep) for a in allowed):
            raise ConfigError(key, f"path {path!r} is outside allowed.paths ({', '.join(allowed)})")

    @staticmethod
    def _file(key: str, path: str, item: str) -> str:
        try:
            props = parse(Path(path).read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigError(key, f"cannot read {path!r} for ${{file:...}}: {exc.strerror}") from None
        if item not in props:
            raise ConfigError(key, f"{path!r} has no key {item!r}")
        return props[item]

    @staticmethod
    def _dir(key: str, path: str, item: str) -> str:
        target = Path(path) / item
        if os.sep in item or item in ("..", "."):
            raise ConfigError(key, f"{item!r} must be a file name inside {path!r}")
        try:
            return target.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(key, f"cannot read {str(target)!r} for ${{dir:...}}: {exc.strerror}") from None
