"""Check type ``docs``: documentation integrity, as AIDE and Tripwire check files: each
file against a manifest of sha256 sums (``vigil check NAME --update`` writes it), and
the Markdown's relative links, anchors and required sections."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from vigil import Check, RegisterCheck, Result, Status, hookimpl, plural, replace_file

#: How the summary names one and many of a kind of problem.
WORDS = {"broken links": ("broken link", "broken links"),
         "missing sections": ("file missing sections", "files missing sections")}
LINK = re.compile(r"\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.M)
FENCE = re.compile(r"^(```|~~~).*?^\1", re.M | re.S)
#: How many files a summary names of each kind; the details list them all.
NAMED = 5


@dataclass
class DocsOptions:
    root: str
    #: sha256sum's format; relative to ``root`` unless absolute.
    manifest: str = "SHA256SUMS"
    include: list[str] = field(default_factory=lambda: ["**/*.md"])
    exclude: list[str] = field(default_factory=list)
    #: Headings every Markdown file must have.
    require_sections: list[str] = field(default_factory=list)
    check_links: bool = True


def slug(heading: str) -> str:
    """A heading's anchor as GitHub makes it."""
    text = re.sub(r"[`*_~\[\]()]", "", heading.strip().lower())
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(text: str) -> set[str]:
    seen: dict[str, int] = {}
    found = set()
    for heading in HEADING.findall(FENCE.sub("", text)):
        base = slug(heading)
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if not count else f"{base}-{count}")
    return found


class Docs(Check):
    Options = DocsOptions
    options: DocsOptions
    #: What it finds is for people to act on: /readyz fails on it only with
    #: ``readiness = true``.
    readiness = False
    metrics = ("files", "missing", "modified", "not_in_the_manifest", "broken_links",
               "missing_sections")

    def __init__(self, name: str, options: DocsOptions, timeout: float = 10.0) -> None:
        super().__init__(name, options, timeout)
        self.root = Path(options.root).expanduser()
        self.manifest = self.root / options.manifest
        #: path -> (mtime_ns, size, sha256): a file is hashed again only when it changed.
        self._hashes: dict[str, tuple[int, int, str]] = {}

    def files(self) -> dict[str, Path]:
        found = {}
        for pattern in self.options.include:
            for path in self.root.glob(pattern):
                rel = path.relative_to(self.root).as_posix()
                if path.is_file() and path != self.manifest and not any(
                        Path(rel).match(x) for x in self.options.exclude):
                    found[rel] = path
        return dict(sorted(found.items()))

    def sha256(self, rel: str, path: Path) -> str:
        stat = path.stat()
        cached = self._hashes.get(rel)
        if cached and cached[:2] == (stat.st_mtime_ns, stat.st_size):
            return cached[2]
        # Imported here, as the seed's clients are: hashlib sets up OpenSSL (half a
        # megabyte resident), which a daemon without a docs check need not carry.
        import hashlib

        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        self._hashes[rel] = (stat.st_mtime_ns, stat.st_size, digest)
        return digest

    def update(self) -> str:
        """Write the manifest of the files as they are now (`vigil check NAME --update`)."""
        lines = [f"{self.sha256(rel, path)}  {rel}\n" for rel, path in self.files().items()]
        replace_file(self.manifest, "".join(lines).encode())
        return f"{self.manifest}: {plural(len(lines), 'file')}"

    def run(self) -> Result:
        try:
            text = self.manifest.read_text()
        except OSError as exc:
            return Result(Status.UNKNOWN, f"cannot read the manifest {self.manifest}: "
                          f"{exc.strerror or exc}; `vigil check {self.name} --update` writes it",
                          healable=False)
        listed = {}
        for line in text.splitlines():
            digest, _, rel = line.strip().partition(" ")
            if digest and rel.strip():
                listed[rel.strip().lstrip("*")] = digest  # "*" marks binary mode
        files = self.files()
        found: dict[str, list[str]] = {
            "missing": [rel for rel in listed if rel not in files],
            "modified": [rel for rel, path in files.items()
                         if rel in listed and self.sha256(rel, path) != listed[rel]],
            "not in the manifest": [rel for rel in files if rel not in listed],
            "broken links": [], "missing sections": []}
        for rel, path in files.items():
            if path.suffix == ".md":
                self._markdown(rel, path, found)
        status = Status.CRIT if found["missing"] or found["modified"] else (
            Status.WARN if any(found.values()) else Status.OK)
        said = [f"{plural(len(items), *WORDS.get(kind, (kind, kind)))} "
                f"({', '.join(items[:NAMED])}"
                f"{', ...' if len(items) > NAMED else ''})"
                for kind, items in found.items() if items]
        summary = "; ".join(said) or f"{plural(len(files), 'file')} as in the manifest"
        metrics: dict[str, float] = {"files": len(files), **{
            kind.replace(" ", "_"): len(items) for kind, items in found.items()}}
        return Result(status, summary, metrics=metrics, details=found, healable=False)

    def _markdown(self, rel: str, path: Path, found: dict[str, list[str]]) -> None:
        text = path.read_text(errors="replace")
        own = anchors(text)
        if missing := [s for s in self.options.require_sections if slug(s) not in own]:
            found["missing sections"].append(f"{rel}: {', '.join(missing)}")
        if not self.options.check_links:
            return
        for target in LINK.findall(FENCE.sub("", text)):
            if "://" in target or target.startswith(("mailto:", "/")):
                continue
            file, _, anchor = target.partition("#")
            linked = (path.parent / file).resolve() if file else path
            if not linked.exists() or (anchor and linked.suffix == ".md" and anchor not in (
                    own if linked == path else anchors(linked.read_text(errors="replace")))):
                found["broken links"].append(f"{rel} -> {target}")


@hookimpl
def vigil_check_types(register: RegisterCheck) -> None:
    register("docs", Docs)
