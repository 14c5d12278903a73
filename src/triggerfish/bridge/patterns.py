"""Topic patterns: a subscription's Java regex (what Strimzi's clients send) as a regex librdkafka understands.

Strimzi hands ``topic_pattern`` to the Java client's ``Pattern``; librdkafka compiles it with POSIX
extended syntax, which has no ``\\d``, ``\\w`` or ``\\s`` shorthands and no ``(?:`` groups. Those are
rewritten as the bracket expressions they stand for; everything else is passed on as written.
"""

from __future__ import annotations

_CLASSES = {"d": "0-9", "w": "A-Za-z0-9_", "s": " \t\n\r\f\v"}


def posix_regex(pattern: str) -> str:
    """``pattern`` (Java syntax) in POSIX extended syntax, for ``Consumer.subscribe(["^..."])``."""
    out: list[str] = []
    in_bracket = False
    i = 0
    while i < len(pattern):
        c = pattern[i]
        nxt = pattern[i + 1] if i + 1 < len(pattern) else ""
        if c == "\\" and nxt:
            lower = nxt.lower()
            if lower in _CLASSES:
                chars = _CLASSES[lower]
                negated = nxt.isupper()
                if in_bracket:
                    # a negated shorthand inside brackets has no POSIX spelling: leave it for the library to refuse
                    out.append(f"\\{nxt}" if negated else chars)
                else:
                    out.append(f"[^{chars}]" if negated else f"[{chars}]")
            else:
                out.append(c + nxt)
            i += 2
            continue
        if not in_bracket and pattern.startswith("(?:", i):
            out.append("(")
            i += 3
            continue
        if c == "[" and not in_bracket:
            in_bracket = True
            out.append(c)
            # a leading ']' (or '^]') is a literal, not the end of the class
            for lead in ("^]", "]", "^"):
                if pattern.startswith(lead, i + 1):
                    out.append(lead)
                    i += len(lead)
                    break
        elif c == "]" and in_bracket:
            in_bracket = False
            out.append(c)
        else:
            out.append(c)
        i += 1
    return "".join(out)
