"""Completion: keys not yet present and enum values from the schemas, block snippets, and paths.

Works on half-typed documents (which do not parse): the context — which mapping the cursor
is in, whether a key or a value is being typed — comes from indentation (YAML) or a small
token scan (JSON) of the text before the cursor. ``allowed_files`` entries complete from the
workspace's real files (git-ignored files and ``.conductor/`` left out), pattern lists from
globs built on those files.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lsprotocol import types as lsp

from conductor.lsp import schema_info
from conductor.project.layout import CONDUCTOR_DIR, SKIP_DIRS
from conductor.validation.document import JsonPath

PATH_KEYS = {"allowed_files", "files_changed"}
GLOB_KEYS = {"protected_patterns", "unprotect"}
COMMON_GLOBS = ["*.lock", "migrations/*", ".github/**", "*.min.js", "**/generated/**", ".env*"]
KEY_RE = re.compile(r"^([A-Za-z_][\w-]*)\s*:(?:\s+(.*))?$")
MAX_FILES = 5000

# Whole blocks, as YAML snippets; ``{i}`` is the indent of the line.
YAML_BLOCKS: dict[tuple[str, str], tuple[str, str]] = {
    ("policy", "file_rules"): (
        "file_rules section",
        'file_rules:\n{i}  protected_patterns:\n{i}    - "${{1:*.lock}}"\n{i}    - "${{2:migrations/*}}"'),
    ("policy", "behavior"): (
        "behavior section",
        "behavior:\n{i}  max_diff_lines: ${{1:500}}\n{i}  timeout_seconds: ${{2:300}}\n"
        "{i}  approval_below: ${{3:0.5}}\n{i}  caution_below: ${{4:0.8}}"),
    ("policy", "verification"): (
        "verification command",
        "verification:\n{i}  - name: ${{1:unit tests}}\n{i}    run: ${{2:python -m pytest -q}}\n"
        "{i}    timeout_seconds: ${{3:120}}"),
    ("policy", "global_constraints"): (
        "global constraints", 'global_constraints:\n{i}  - "${{1:Always include tests for new functions}}"'),
    ("config", "llm"): (
        "llm section", "llm:\n{i}  model: ${{1:gemini-2.5-flash}}\n{i}  api_key_env: ${{2:GEMINI_API_KEY}}"),
}


@dataclass
class Context:
    path: JsonPath  # the mapping (key position) or the key/list whose value is typed
    position: str  # "key" | "value" | "item"
    typed: str = ""
    start: int = 0  # code point where the typed word starts
    end: int = 0  # code point where the replaced text ends
    present: set[str] = field(default_factory=set)
    indent: str = ""
    quoted: bool = False


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def yaml_context(lines: list[str], line_no: int, char: int) -> Context:
    full = lines[line_no] if line_no < len(lines) else ""
    text = full[:char]
    body = text.lstrip(" ")
    indent = len(text) - len(body)
    item = False
    while body.startswith("- ") or body == "-":
        item = True
        indent += 2
        body = body[2:]
    path: list[str | int] = []
    target = indent
    for index in range(line_no - 1, -1, -1):
        raw = lines[index]
        stripped = raw.strip()
        if not stripped or stripped.startswith("#") or stripped == "---":
            continue
        ind = _indent(raw)
        if ind >= target:
            continue
        content = raw.lstrip(" ")
        if content.startswith("- "):
            path.insert(0, 0)
            target = ind
            continue
        match = KEY_RE.match(content.split(" #")[0].rstrip())
        if match:
            path.insert(0, match.group(1))
            target = ind
        if ind == 0:
            break
    match = KEY_RE.match(body) if ":" in body else None
    ctx: Context
    if match:
        typed = match.group(2) or ""
        start = char - len(typed)
        ctx = Context((*path, match.group(1)), "value", typed.strip("\"'"), start, len(full.rstrip()))
    elif item:
        ctx = Context(tuple(path), "item", body.strip("\"'"), char - len(body), len(full.rstrip()))
    else:
        word = re.match(r"[\w-]*", full[char:])
        ctx = Context(tuple(path), "key", body, char - len(body), char + (len(word.group(0)) if word else 0))
        ctx.present = _yaml_siblings(lines, line_no, indent)
    ctx.indent = " " * indent
    return ctx


def _yaml_siblings(lines: list[str], line_no: int, indent: int) -> set[str]:
    keys: set[str] = set()
    for direction in (-1, 1):
        index = line_no + direction
        while 0 <= index < len(lines):
            raw = lines[index]
            stripped = raw.strip()
            index += direction
            if not stripped or stripped.startswith("#"):
                continue
            ind = _indent(raw)
            content = raw.lstrip(" ")
            if content.startswith("- ") and ind + 2 == indent:
                match = KEY_RE.match(content[2:].split(" #")[0].rstrip())
                if match:
                    keys.add(match.group(1))
                break
            if ind < indent:
                break
            if ind == indent:
                match = KEY_RE.match(content.split(" #")[0].rstrip())
                if match:
                    keys.add(match.group(1))
    return keys


def json_context(text: str, offset: int) -> Context:
    """Scan JSON text before ``offset``: the container path and whether a key or value is typed."""
    stack: list[list[Any]] = []  # ["{", key, expecting_key, keys] | ["[", index]
    i = 0
    in_string = False
    string_start = 0
    last_string = ""
    while i < offset:
        ch = text[i]
        if in_string:
            if ch == "\\":
                i += 2
                continue
            if ch == '"':
                in_string = False
                last_string = text[string_start + 1:i]
                if stack and stack[-1][0] == "{" and stack[-1][2]:
                    stack[-1][1] = last_string
                    stack[-1][3].add(last_string)
            i += 1
            continue
        if ch == '"':
            in_string = True
            string_start = i
        elif ch == "{":
            stack.append(["{", None, True, set()])
        elif ch == "[":
            stack.append(["[", 0])
        elif ch in "}]":
            if stack:
                stack.pop()
        elif ch == ":" and stack and stack[-1][0] == "{":
            stack[-1][2] = False
        elif ch == "," and stack:
            if stack[-1][0] == "{":
                stack[-1][2] = True
            else:
                stack[-1][1] += 1
        i += 1
    path: list[str | int] = []
    for frame in stack[:-1]:
        if frame[0] == "{":
            path.append(frame[1] if frame[1] is not None else "")
        else:
            path.append(frame[1])
    if not stack:
        return Context((), "key")
    top = stack[-1]
    typed = text[string_start + 1:offset] if in_string else ""
    start = string_start if in_string else offset
    end = offset
    if in_string:
        closing = text.find('"', offset)
        newline = text.find("\n", offset)
        if closing != -1 and (newline == -1 or closing < newline):
            end = closing + 1
    if top[0] == "{":
        if top[2]:
            present = set(top[3])
            present.update(_json_keys_after(text, offset))
            ctx = Context(tuple(path), "key", typed, start, end, present, quoted=in_string)
        else:
            ctx = Context((*path, top[1]), "value", typed, start, end, quoted=in_string)
    else:
        ctx = Context(tuple(path), "item", typed, start, end, quoted=in_string)
    return ctx


def _json_keys_after(text: str, offset: int) -> set[str]:
    """Keys of the same object after the cursor (a shallow scan to its closing brace)."""
    keys: set[str] = set()
    depth = 0
    for match in re.finditer(r'"((?:[^"\\]|\\.)*)"\s*:|[{}\[\]]', text[offset:offset + 20000]):
        token = match.group(0)
        if token in "{[":
            depth += 1
        elif token in "}]":
            if depth == 0:
                break
            depth -= 1
        elif depth == 0:
            keys.add(match.group(1))
    return keys


class Files:
    """The workspace's real files (git's view when it is a repository), cached briefly."""

    def __init__(self) -> None:
        self.cache: dict[Path, tuple[float, list[str]]] = {}

    def paths(self, root: Path) -> list[str]:
        hit = self.cache.get(root)
        if hit and time.monotonic() - hit[0] < 10:
            return hit[1]
        files = self._git(root)
        if files is None:
            files = self._walk(root)
        files = sorted(f for f in files if not f.startswith(f"{CONDUCTOR_DIR}/"))[:MAX_FILES]
        self.cache[root] = (time.monotonic(), files)
        return files

    @staticmethod
    def _git(root: Path) -> list[str] | None:
        try:
            out = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=root, capture_output=True,
                                 text=True, timeout=3, check=False)
        except (OSError, subprocess.SubprocessError):
            return None
        if out.returncode != 0:
            return None
        return [line for line in out.stdout.splitlines() if line]

    @staticmethod
    def _walk(root: Path) -> list[str]:
        found: list[str] = []
        for folder, dirs, names in os.walk(root):
            dirs[:] = [d for d in dirs if d not in SKIP_DIRS and not d.startswith(".")]
            for name in names:
                found.append(Path(folder, name).relative_to(root).as_posix())
                if len(found) >= MAX_FILES:
                    return found
        return found


def _doc(text: str, markdown: bool) -> lsp.MarkupContent | str:
    return lsp.MarkupContent(kind=lsp.MarkupKind.Markdown, value=text) if markdown else text


@dataclass
class Client:
    snippets: bool
    markdown: bool
    as_is: bool


def complete(kind: str, syntax: str, text: str, line: int, char: int, root: Path | None, files: Files,
             client: Client, to_client: Any) -> list[lsp.CompletionItem]:
    """Completion items at (line, code-point char); ``to_client`` converts (line, char) to an LSP Position."""
    lines = text.split("\n")
    if syntax == "yaml":
        ctx = yaml_context(lines, line, char)
    else:
        offset = sum(len(s) + 1 for s in lines[:line]) + char
        ctx = json_context(text, offset)
    rng = lsp.Range(start=to_client(line, ctx.start), end=to_client(line, max(ctx.end, char)))
    items: list[lsp.CompletionItem] = []
    schema_path = tuple(0 if isinstance(p, int) else p for p in ctx.path)
    if ctx.position == "key":
        for name, node in schema_info.properties(kind, schema_path).items():
            if name in ctx.present:
                continue
            items.append(_key_item(kind, syntax, name, node, ctx, rng, client))
        return items
    node = schema_info.at(kind, schema_path) or {}
    key = next((p for p in reversed(ctx.path) if isinstance(p, str)), "")
    if ctx.position == "item":
        if key in PATH_KEYS or key in GLOB_KEYS:
            return _path_items(key, syntax, ctx, rng, root, files)
        item_node = schema_info.at(kind, (*schema_path, 0)) or {}
        if item_node.get("type") == "object" or "properties" in item_node:
            return [_key_item(kind, syntax, n, sub, ctx, rng, client)
                    for n, sub in schema_info.properties(kind, (*schema_path, 0)).items()]
        node = item_node
    elif node.get("type") == "array" and (key in PATH_KEYS or key in GLOB_KEYS):
        return _path_items(key, syntax, ctx, rng, root, files)
    for value in schema_info.allowed_values(node):
        shown = str(value).lower() if isinstance(value, bool) else str(value)
        label = json.dumps(value) if syntax == "json" else shown
        items.append(lsp.CompletionItem(
            label=str(value).lower() if isinstance(value, bool) else str(value),
            kind=lsp.CompletionItemKind.EnumMember,
            detail=schema_info.type_label(node),
            documentation=_doc(str(node.get("description", "")), client.markdown) if node.get("description") else None,
            text_edit=lsp.TextEdit(range=rng, new_text=label),
            filter_text=label,
        ))
    return items


def _key_item(kind: str, syntax: str, name: str, node: dict[str, Any], ctx: Context, rng: lsp.Range,
              client: Client) -> lsp.CompletionItem:
    description = str(node.get("description", ""))
    sample = schema_info.example(node)
    detail = schema_info.type_label(node)
    snippet: str | None = None
    plain: str
    if syntax == "yaml":
        block = YAML_BLOCKS.get((kind, name)) if not ctx.path else None
        if block is not None:
            snippet = block[1].format(i=ctx.indent)
            detail = f"{detail} — {block[0]}"
        elif node.get("type") == "object":
            snippet = f"{name}:\n{ctx.indent}  $0"
        elif node.get("type") == "array":
            snippet = f"{name}:\n{ctx.indent}  - $0"
        elif sample is not None and not isinstance(sample, dict | list):
            shown = str(sample).lower() if isinstance(sample, bool) else str(sample)
            snippet = f"{name}: ${{1:{_escape(shown)}}}"
        plain = f"{name}: " if node.get("type") not in ("object", "array") else f"{name}:\n{ctx.indent}  "
    else:
        if node.get("type") == "object":
            snippet = f'"{name}": {{$0}}'
        elif node.get("type") == "array":
            snippet = f'"{name}": [$0]'
        elif node.get("type") == "string" or "enum" in node or "const" in node:
            shown = str(sample) if isinstance(sample, str) else ""
            snippet = f'"{name}": "${{1:{_escape(shown)}}}"'
        elif sample is not None:
            snippet = f'"{name}": ${{1:{_escape(json.dumps(sample))}}}'
        plain = f'"{name}": '
    use_snippet = client.snippets and snippet is not None
    documentation = description
    if sample is not None:
        documentation += f"\n\nExample: `{json.dumps(sample, ensure_ascii=False)}`"
    return lsp.CompletionItem(
        label=name,
        kind=lsp.CompletionItemKind.Property,
        detail=detail,
        documentation=_doc(documentation, client.markdown) if documentation else None,
        text_edit=lsp.TextEdit(range=rng, new_text=snippet if use_snippet and snippet else plain),
        insert_text_format=lsp.InsertTextFormat.Snippet if use_snippet else lsp.InsertTextFormat.PlainText,
        insert_text_mode=lsp.InsertTextMode.AsIs if client.as_is else None,
        filter_text=f'"{name}"' if syntax == "json" and ctx.quoted else name,
        sort_text=f"0{name}",
    )


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("$", "\\$").replace("}", "\\}")


def _path_items(key: str, syntax: str, ctx: Context, rng: lsp.Range, root: Path | None,
                files: Files) -> list[lsp.CompletionItem]:
    if root is None:
        return []
    paths = files.paths(root)
    candidates: list[tuple[str, str]] = []
    if key in PATH_KEYS:
        typed = ctx.typed
        candidates += [(p, "file") for p in paths if p.startswith(typed)][:400]
        folders = sorted({p.rsplit("/", 1)[0] for p in paths if "/" in p})
        candidates += [(f"{d}/**", "every file under the folder") for d in folders if d.startswith(typed)][:100]
    else:
        exts = sorted({"*" + Path(p).suffix for p in paths if Path(p).suffix})
        folders = sorted({p.split("/", 1)[0] for p in paths if "/" in p})
        candidates += [(g, "common protected pattern") for g in COMMON_GLOBS]
        candidates += [(e, "every file with this extension, at any depth") for e in exts[:50]]
        candidates += [(f"{d}/**", "everything under the folder") for d in folders[:100]]
        candidates += [(p, "this file") for p in paths[:300]]
    out = []
    seen: set[str] = set()
    for value, why in candidates:
        if value in seen:
            continue
        seen.add(value)
        new_text = json.dumps(value) if syntax == "json" or value.startswith(("*", "[", "{", "!", "&", "?")) else value
        out.append(lsp.CompletionItem(
            label=value, kind=lsp.CompletionItemKind.File if why == "file" else lsp.CompletionItemKind.Value,
            detail=why, text_edit=lsp.TextEdit(range=rng, new_text=new_text),
            filter_text=new_text if syntax == "json" and ctx.quoted else value,
        ))
    return out
