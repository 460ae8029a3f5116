"""Loading contracts: YAML text or bytes within the loading limits, and the contract files of
a folder (`<dataset>.yaml`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from yaml.events import AliasEvent
from yaml.nodes import MappingNode, Node, SequenceNode

from sluice.contracts.check import ContractError
from sluice.contracts.model import Contract
from sluice.contracts.parse import parse_contract

# Loading limits: a contract is a few KB of YAML. These bound what a hostile one can cost
# before it is judged (an alias bomb, a deeply nested document, a huge file).
MAX_CONTRACT_BYTES = 256 * 1024
MAX_ALIASES = 32
MAX_NODES = 20_000
MAX_DEPTH = 32


class _BoundedLoader(yaml.SafeLoader):
    """PyYAML's safe loader with a bound on aliases, nesting and the document's size once
    its aliases are expanded: a YAML alias bomb is refused before anything is built."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.aliases = 0
        self.depth = 0

    def compose_node(self, parent: Node | None, index: Any) -> Node | None:
        if self.check_event(AliasEvent):
            self.aliases += 1
            if self.aliases > MAX_ALIASES:
                raise _TooMuch(f"more than {MAX_ALIASES} aliases")
        self.depth += 1
        try:
            if self.depth > MAX_DEPTH:
                raise _TooMuch(f"nested more than {MAX_DEPTH} levels deep", "flatten it")
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict[Any, Any]:
        # PyYAML keeps the last of a key given twice: a second `columns:` would silently
        # replace the first. A key a merge (`<<: *base`) brings in may still be overridden.
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=True)
            try:
                repeated = key in seen
            except TypeError:
                continue  # an unhashable key: PyYAML refuses it itself
            if repeated:
                line = key_node.start_mark.line + 1
                raise _TooMuch(
                    f"the key {key!r} is given twice (again at line {line})",
                    "give each key once (YAML would keep only the last)",
                )
            seen.add(key)
        return super().construct_mapping(node, deep)


class _TooMuch(Exception):
    """A YAML document over a loading limit, or one PyYAML would read silently other than
    written (a key given twice): what is wrong, and the fix."""

    def __init__(self, problem: str, fix: str = "write it without YAML anchors and aliases"):
        super().__init__(problem)
        self.problem = problem
        self.fix = fix


def _expanded_nodes(root: Node) -> int:
    """How many nodes the document has once every alias is expanded (capped past the limit)."""
    sizes: dict[int, int] = {}

    def size(node: Node) -> int:
        known = sizes.get(id(node))
        if known is not None:
            if known == 0:
                raise _TooMuch("an alias inside its own anchor")
            return known
        sizes[id(node)] = 0  # being counted
        total = 1
        if isinstance(node, SequenceNode):
            children: list[Node] = list(node.value)
        elif isinstance(node, MappingNode):
            children = [part for pair in node.value for part in pair]
        else:
            children = []
        for child in children:
            total = min(total + size(child), MAX_NODES + 1)
        sizes[id(node)] = total
        return total

    return size(root)


def _safe_yaml(text: str) -> Any:
    loader = _BoundedLoader(text)
    try:
        root = loader.get_single_node()
        if root is None:
            return None
        if _expanded_nodes(root) > MAX_NODES:
            raise _TooMuch(f"more than {MAX_NODES} values once its aliases are expanded")
        return loader.construct_document(root)
    finally:
        loader.dispose()


def _too_large(source: str) -> ContractError:
    return ContractError(
        source,
        "file",
        f"over the limit of {MAX_CONTRACT_BYTES} bytes",
        "a contract is a few KB: remove what it does not need",
    )


def load_contract_text(text: str, source: str) -> Contract:
    if len(text.encode("utf-8", errors="surrogatepass")) > MAX_CONTRACT_BYTES:
        raise _too_large(source)
    try:
        document = _safe_yaml(text)
    except _TooMuch as exc:
        raise ContractError(source, "YAML", exc.problem, exc.fix) from exc
    except yaml.YAMLError as exc:
        raise ContractError(
            source, "YAML", str(exc).splitlines()[0], "fix the YAML syntax"
        ) from exc
    return parse_contract(document, source)


def load_contract_bytes(data: bytes, source: str) -> Contract:
    """A contract from a file's bytes: at most `MAX_CONTRACT_BYTES` of UTF-8 YAML."""
    if len(data) > MAX_CONTRACT_BYTES:
        raise _too_large(source)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ContractError(
            source, "file", f"not UTF-8 (byte {exc.start})", "save the contract as UTF-8"
        ) from exc
    return load_contract_text(text, source)


def find_contract(dataset: str, directory: Path) -> Contract | None:
    for suffix in (".yaml", ".yml"):
        path = directory / f"{dataset}{suffix}"
        if path.is_file():
            with path.open("rb") as handle:
                # One byte more than the limit is enough to know it is over.
                data = handle.read(MAX_CONTRACT_BYTES + 1)
            return load_contract_bytes(data, str(path))
    return None
