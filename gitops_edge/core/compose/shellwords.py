"""Split a string ``command``/``entrypoint`` the way Compose 2.40 does.

Compose (compose-go, through go-shellwords 1.0.12 without environment or
backtick expansion) is not a POSIX shell splitter, and ``shlex`` differs from
it: it stops at the first unquoted ``;``, ``&``, ``|``, ``<`` or ``>`` and
silently drops the rest (``echo hi; rm x`` is ``["echo", "hi"]``), drops a
word starting with a digit right before ``>`` (``2>``), takes a backslash as
an escape of the next character inside double quotes too (``"a\\b"`` is ``ab``),
keeps backticks and ``$(...)`` as literal text, and refuses a bare ``(``.
Matching it keeps the container the agent creates equal to Compose's.
"""

from __future__ import annotations

_SPACE = " \t\r\n"
_OPERATORS = ";&|<>"


def split_words(line: str) -> list[str]:
    """The words Compose runs for ``line``; ``ValueError`` where Compose refuses the string."""
    words: list[str] = []
    word = ""
    has_word = False  # a word is open (even an empty quoted one)
    escaped = single = double = backtick = dollar = False
    for ch in line:
        if escaped:
            word += ch
            escaped, has_word = False, True
            continue
        if ch == "\\":
            if single:
                word += ch
            else:
                escaped = True
            continue
        quoted = single or double or backtick or dollar
        if ch in _SPACE:
            if quoted:
                word += ch
            elif has_word:
                words.append(word)
                word, has_word = "", False
            continue
        if ch == "`" and not (single or double or dollar):
            backtick = not backtick  # kept as text: Compose runs nothing
        elif ch == ")" and not (single or double or backtick):
            dollar = not dollar  # kept as text, and (as in Compose) a bare ``)`` opens a region
        elif ch == "(" and not (single or double or backtick):
            if dollar or not word.endswith("$"):
                raise ValueError("invalid command line string (unquoted '(')")
            dollar = True
        elif ch == '"' and not (single or dollar):
            has_word = has_word or double
            double = not double
            continue
        elif ch == "'" and not (double or dollar):
            has_word = has_word or single
            single = not single
            continue
        elif ch in _OPERATORS and not quoted:
            if ch == ">" and word[:1].isascii() and word[:1].isdigit():
                has_word = False  # ``2>file``: the descriptor number is not a word
            break
        word += ch
        has_word = True
    else:
        if escaped or single or double or backtick or dollar:
            raise ValueError("invalid command line string (unterminated quote or escape)")
    if has_word:
        words.append(word)
    return words
