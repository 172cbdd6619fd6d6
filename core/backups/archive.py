"""The backup directory: file names, manifests (JSON beside each dump), checksums, listing, permissions
(directory 0700, files 0600)."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from core.backups.pg import BackupError

FILE_PREFIX = "aristobot-"
SUFFIX = ".dump"
MANIFEST_SUFFIX = ".json"
STAMP = "%Y%m%dT%H%M%SZ"


@dataclass(frozen=True)
class Backup:
    dump: Path
    manifest: dict[str, Any]

    @property
    def created_at(self) -> datetime:
        return datetime.fromisoformat(self.manifest["created_at"])

    @property
    def verification(self) -> dict[str, Any] | None:
        return self.manifest.get("verification")

    @property
    def verified_ok(self) -> bool:
        return bool(self.verification and self.verification.get("ok"))


def manifest_path(dump: Path) -> Path:
    return dump.with_suffix(MANIFEST_SUFFIX)


def dump_name(when: datetime) -> str:
    return f"{FILE_PREFIX}{when.astimezone(UTC).strftime(STAMP)}{SUFFIX}"


def ensure_directory(directory: Path) -> Path:
    """Create the directory (0700) if missing and prove it takes a file; any failure is one clear line."""
    if directory.exists() and not directory.is_dir():
        raise BackupError(f"backup directory {directory} is not a directory (a file is in the way)")
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        directory.chmod(0o700)
        probe = directory / ".write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise BackupError(f"backup directory {directory} is not writable: {exc.strerror or exc}") from None
    return directory


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Atomically (a temp file renamed over), 0600."""
    temp = path.with_name(path.name + ".tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w") as handle:
            json.dump(data, handle, indent=2, sort_keys=True)
            handle.write("\n")
        temp.replace(path)
    except OSError as exc:
        temp.unlink(missing_ok=True)
        raise BackupError(f"could not write {path}: {exc.strerror or exc}") from None


def load(dump: Path) -> Backup:
    """A backup given by its dump file; its manifest must be beside it."""
    if not dump.is_file():
        raise BackupError(f"{dump}: no such backup file")
    manifest = manifest_path(dump)
    try:
        data = json.loads(manifest.read_text())
    except FileNotFoundError:
        raise BackupError(f"{dump}: its manifest {manifest.name} is missing beside it") from None
    except (OSError, ValueError) as exc:
        raise BackupError(f"{manifest}: not a readable manifest ({exc})") from None
    missing = [key for key in ("created_at", "sha256", "size_bytes", "tables", "schema_revision") if key not in data]
    if not isinstance(data, dict) or missing:
        raise BackupError(f"{manifest}: not an Aristobot backup manifest (missing {', '.join(missing)})")
    return Backup(dump, data)


def check_file(backup: Backup) -> None:
    """The dump is the one the manifest describes: same size and sha256 (a truncated or altered file is refused)."""
    size = backup.dump.stat().st_size
    if size != backup.manifest["size_bytes"]:
        raise BackupError(
            f"{backup.dump.name}: size {size} bytes, the manifest says {backup.manifest['size_bytes']} "
            "(truncated or replaced): not restorable as is"
        )
    if sha256_of(backup.dump) != backup.manifest["sha256"]:
        raise BackupError(f"{backup.dump.name}: sha256 differs from the manifest (corrupt): not restorable as is")


def list_backups(directory: Path) -> list[Backup]:
    """Every complete backup (dump + manifest), newest first; a dump without a manifest is not one."""
    if not directory.is_dir():
        return []
    found = []
    for dump in directory.glob(f"{FILE_PREFIX}*{SUFFIX}"):
        with contextlib.suppress(BackupError):
            found.append(load(dump))
    return sorted(found, key=lambda backup: backup.created_at, reverse=True)


def record_verification(backup: Backup, ok: bool, detail: str) -> Backup:
    manifest = {
        **backup.manifest,
        "verification": {"verified_at": datetime.now(UTC).isoformat(), "ok": ok, "detail": detail[:1000]},
    }
    write_json(manifest_path(backup.dump), manifest)
    return Backup(backup.dump, manifest)


def remove(backup: Backup) -> None:
    backup.dump.unlink(missing_ok=True)
    manifest_path(backup.dump).unlink(missing_ok=True)
