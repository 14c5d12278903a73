"""Evaluate CloudFormation intrinsic functions and Conditions in an (expanded) template, locally.

``samtranslator.intrinsics.resolver.IntrinsicsResolver`` resolves only ``Ref``, ``Fn::Sub`` and
``Fn::GetAtt`` of parameters (and ``Fn::FindInMap`` of Mappings), and leaves everything else to
CloudFormation; no maintained library evaluates the rest without deploying (moto's does, tied to its
own resource models). So this small evaluator covers what a template's Lambda and event source
mapping properties use: ``Ref``, ``Fn::Sub``, ``Fn::GetAtt``, ``Fn::If``, ``Fn::Join``,
``Fn::Select``, ``Fn::Split``, ``Fn::FindInMap``, ``Fn::Base64``, ``Fn::GetAZs``, ``Fn::Equals``,
``Fn::And``, ``Fn::Or``, ``Fn::Not``, ``Condition`` and ``AWS::NoValue``. Resources' ``Ref`` and
``GetAtt`` values come from :mod:`triggerfish.template.physical`.

Errors are ``ConfigError`` whose field is the path *inside the value being resolved* (``BatchSize``,
``Environment.Variables.TABLE``); the caller prefixes it with the template path.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable
from typing import Any

from triggerfish.errors import ConfigError
from triggerfish.template import physical

#: Removed from the enclosing object or list, as CloudFormation does with ``Ref: AWS::NoValue``.
NO_VALUE: Any = object()

_SUB_VAR = re.compile(r"\$\{([^}!][^}]*)\}")


def _join(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


class Resolver:
    """Evaluates intrinsics against ``parameters`` (resolved values, pseudo parameters included),
    ``mappings``, ``conditions`` and ``resources`` (for ``Ref``/``GetAtt`` of resources)."""

    def __init__(self, parameters: dict[str, Any], unset: dict[str, str], mappings: dict[str, Any],
                 conditions: dict[str, Any], resources: dict[str, Any], place: physical.Place) -> None:
        self.parameters = parameters
        #: declared parameters without a value: name -> why, raised only where one is used
        self.unset = unset
        self.mappings = mappings
        self.conditions = conditions
        self.resources = resources
        self.place = place
        self._evaluated: dict[str, bool] = {}
        self._functions: dict[str, Callable[[Any, str], Any]] = {
            "Ref": self._ref, "Fn::Sub": self._sub, "Fn::GetAtt": self._get_att, "Fn::If": self._if,
            "Fn::Join": self._join, "Fn::Select": self._select, "Fn::Split": self._split,
            "Fn::FindInMap": self._find_in_map, "Fn::Base64": self._base64, "Fn::GetAZs": self._get_azs,
            "Fn::Equals": self._equals, "Fn::And": self._and, "Fn::Or": self._or, "Fn::Not": self._not,
            "Condition": self._condition_fn,
        }

    # -- public ---------------------------------------------------------------------------------
    def resolve(self, value: Any, path: str = "") -> Any:
        """``value`` with every intrinsic evaluated; ``NO_VALUE`` entries dropped."""
        if isinstance(value, dict):
            if len(value) == 1:
                (key, arg), = value.items()
                if key in self._functions:
                    return self._functions[key](arg, _join(path, key))
                if isinstance(key, str) and key.startswith("Fn::"):
                    raise ConfigError(_join(path, key), f"{key} cannot be evaluated locally; replace it with a "
                                                        "Parameter or a literal value")
            out: dict[str, Any] = {}
            for k, v in value.items():
                resolved = self.resolve(v, _join(path, str(k)))
                if resolved is not NO_VALUE:
                    out[k] = resolved
            return out
        if isinstance(value, list):
            items = [self.resolve(v, _join(path, i)) for i, v in enumerate(value)]
            return [v for v in items if v is not NO_VALUE]
        return value

    def condition(self, name: str, path: str = "Conditions") -> bool:
        """The named condition's value (each is evaluated once)."""
        if name not in self._evaluated:
            if name not in self.conditions:
                known = ", ".join(self.conditions) or "none"
                raise ConfigError(path, f"condition '{name}' is not declared under Conditions (declared: {known}); "
                                        "declare it or fix the name")
            self._evaluated[name] = False  # a condition that refers to itself is false, not a hang
            self._evaluated[name] = self._truth(self.conditions[name], f"Conditions.{name}")
        return self._evaluated[name]

    # -- functions ------------------------------------------------------------------------------
    def _ref(self, arg: Any, path: str) -> Any:
        name = self.resolve(arg, path)
        if not isinstance(name, str):
            raise ConfigError(path, f"Ref takes a name, not {name!r}; write Ref: ParameterOrResourceName")
        if name == "AWS::NoValue":
            return NO_VALUE
        if name in self.parameters:
            return self.parameters[name]
        if name in self.unset:
            raise ConfigError(path, self.unset[name])
        if name in self.resources:
            return physical.ref(name, self.resources[name], self.place, self.resolve)
        raise ConfigError(path, f"Ref '{name}' names no parameter or resource of this template; fix the name or "
                                f"declare it under Parameters")

    def _get_att(self, arg: Any, path: str) -> Any:
        arg = self.resolve(arg, path)
        if isinstance(arg, str):
            arg = arg.split(".", 1)
        if not (isinstance(arg, list) and len(arg) == 2 and all(isinstance(a, str) for a in arg)):
            raise ConfigError(path, f"Fn::GetAtt takes [LogicalId, Attribute], not {arg!r}")
        logical_id, attribute = arg
        if logical_id not in self.resources:
            raise ConfigError(path, f"Fn::GetAtt names resource '{logical_id}', which this template does not "
                                    "declare (or its Condition is false); fix the name")
        return physical.get_att(logical_id, self.resources[logical_id], attribute, self.place, self.resolve)

    def _sub(self, arg: Any, path: str) -> Any:
        variables: dict[str, Any] = {}
        if isinstance(arg, list):
            if len(arg) != 2 or not isinstance(arg[1], dict):
                raise ConfigError(path, "Fn::Sub takes a string, or [string, {Name: value}]")
            arg, variables = arg[0], self.resolve(arg[1], _join(path, 1))
        if not isinstance(arg, str):
            raise ConfigError(path, f"Fn::Sub takes a string, not {arg!r}")

        def one(match: re.Match[str]) -> str:
            name = match.group(1).strip()
            if name in variables:
                value = variables[name]
            elif "." in name and name.split(".", 1)[0] in self.resources:
                value = self._get_att(name, path)
            else:
                value = self._ref(name, path)
            if not isinstance(value, (str, int, float)):
                raise ConfigError(path, f"${{{name}}} is {value!r}, which Fn::Sub cannot put in a string")
            return str(value)

        # ${!Name} is a literal ${Name}
        return _SUB_VAR.sub(one, arg).replace("${!", "${")

    def _if(self, arg: Any, path: str) -> Any:
        if not (isinstance(arg, list) and len(arg) == 3 and isinstance(arg[0], str)):
            raise ConfigError(path, "Fn::If takes [ConditionName, value if true, value if false]")
        chosen = 1 if self.condition(arg[0], path) else 2
        return self.resolve(arg[chosen], _join(path, chosen))

    def _join(self, arg: Any, path: str) -> Any:
        arg = self.resolve(arg, path)
        if not (isinstance(arg, list) and len(arg) == 2 and isinstance(arg[0], str) and isinstance(arg[1], list)):
            raise ConfigError(path, "Fn::Join takes [delimiter, [values ...]]")
        return arg[0].join(str(v) for v in arg[1])

    def _select(self, arg: Any, path: str) -> Any:
        arg = self.resolve(arg, path)
        if not (isinstance(arg, list) and len(arg) == 2 and isinstance(arg[1], list)):
            raise ConfigError(path, "Fn::Select takes [index, [values ...]]")
        try:
            index = int(arg[0])
            return arg[1][index]
        except (ValueError, TypeError, IndexError):
            raise ConfigError(path, f"index {arg[0]!r} is not in a list of {len(arg[1])}; use 0..{len(arg[1]) - 1}") from None

    def _split(self, arg: Any, path: str) -> Any:
        arg = self.resolve(arg, path)
        if not (isinstance(arg, list) and len(arg) == 2 and all(isinstance(a, str) for a in arg)):
            raise ConfigError(path, "Fn::Split takes [delimiter, string]")
        return arg[1].split(arg[0])

    def _find_in_map(self, arg: Any, path: str) -> Any:
        arg = self.resolve(arg, path)
        if not (isinstance(arg, list) and len(arg) in (3, 4)):
            raise ConfigError(path, "Fn::FindInMap takes [MapName, TopLevelKey, SecondLevelKey]")
        name, top, second = (str(a) for a in arg[:3])
        try:
            return self.mappings[name][top][second]
        except (KeyError, TypeError):
            if len(arg) == 4 and isinstance(arg[3], dict) and "DefaultValue" in arg[3]:
                return arg[3]["DefaultValue"]
            raise ConfigError(path, f"Mappings.{name}.{top}.{second} does not exist; add it or fix the keys") from None

    def _base64(self, arg: Any, path: str) -> Any:
        return base64.b64encode(str(self.resolve(arg, path)).encode()).decode()

    def _get_azs(self, arg: Any, path: str) -> Any:
        region = self.resolve(arg, path) or self.place.region
        return [f"{region}{zone}" for zone in "abc"]

    def _truth(self, value: Any, path: str) -> bool:
        result = self.resolve(value, path)
        if isinstance(result, bool):
            return result
        if isinstance(result, str) and result.lower() in ("true", "false"):
            return result.lower() == "true"
        raise ConfigError(path, f"a condition must be true or false, not {result!r}; use Fn::Equals, Fn::And, "
                                "Fn::Or, Fn::Not or Condition")

    def _equals(self, arg: Any, path: str) -> Any:
        arg = self.resolve(arg, path)
        if not (isinstance(arg, list) and len(arg) == 2):
            raise ConfigError(path, "Fn::Equals takes [value, value]")
        return str(arg[0]) == str(arg[1])

    def _conditions(self, arg: Any, path: str) -> list[bool]:
        if not isinstance(arg, list) or not 1 <= len(arg) <= 10:
            raise ConfigError(path, "takes a list of 1 to 10 conditions")
        return [self._truth(a, _join(path, i)) for i, a in enumerate(arg)]

    def _and(self, arg: Any, path: str) -> Any:
        return all(self._conditions(arg, path))

    def _or(self, arg: Any, path: str) -> Any:
        return any(self._conditions(arg, path))

    def _not(self, arg: Any, path: str) -> Any:
        values = self._conditions(arg, path)
        if len(values) != 1:
            raise ConfigError(path, "Fn::Not takes a list of one condition")
        return not values[0]

    def _condition_fn(self, arg: Any, path: str) -> Any:
        if not isinstance(arg, str):
            raise ConfigError(path, "Condition takes a condition's name")
        return self.condition(arg, path)
