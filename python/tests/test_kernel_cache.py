"""The on-disk kernel cache (fusedops._native): hits, keys, corruption, atomic writes. No GPU."""

from __future__ import annotations

import hashlib
import json
import os
import stat
from pathlib import Path

import pytest

from fusedops import _codegen as cg
from fusedops import _native
from fusedops.errors import LibraryNotFoundError

try:
    _native.library_dir()
except LibraryNotFoundError as e:  # pragma: no cover - CI builds the libraries first
    pytest.skip(f"native libraries not built: {e}", allow_module_level=True)

SOURCE, _ = cg.dequantize_source(16, 64, "f8E4M3FN", "bf16", granularity="row")


@pytest.fixture
def cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.setenv("FUSEDOPS_CACHE_DIR", str(tmp_path))
    monkeypatch.delenv("FUSEDOPS_DISABLE_DISK_CACHE", raising=False)
    return tmp_path


@pytest.fixture
def lowerings(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Records every run of the compiler pipeline."""
    calls: list[str] = []
    real = _native._lower

    def counting(capi, source, chip, *rest):
        calls.append(chip)
        return real(capi, source, chip, *rest)

    monkeypatch.setattr(_native, "_lower", counting)
    return calls


def entries(cache: Path) -> list[Path]:
    return sorted(cache.glob("*.fokc"))


def compile_isa(chip: str = "sm_90a") -> _native.CompiledModule:
    return _native.compile_module(SOURCE, chip=chip, fmt="isa")


def test_second_compile_is_served_from_disk(cache: Path, lowerings: list[str]) -> None:
    first = compile_isa()
    assert lowerings == ["sm_90a"] and len(entries(cache)) == 1
    second = compile_isa()
    assert lowerings == ["sm_90a"], "the pipeline ran again despite a cache entry"
    assert second.kernel_image == first.kernel_image
    assert second.function("kernel")


def test_key_covers_chip_format_and_source(cache: Path, lowerings: list[str]) -> None:
    compile_isa("sm_90a")
    compile_isa("sm_80")
    assert lowerings == ["sm_90a", "sm_80"] and len(entries(cache)) == 2
    key = _native.cache_key(SOURCE, chip="sm_90a", fmt="isa", opt_level=3)
    assert key != _native.cache_key(SOURCE, chip="sm_90a", fmt="bin", opt_level=3)
    assert key != _native.cache_key(SOURCE, chip="sm_90a", fmt="isa", opt_level=2)
    assert key != _native.cache_key(SOURCE + " ", chip="sm_90a", fmt="isa", opt_level=3)
    assert (cache / f"{key}.fokc").exists()


def _corrupt_payload(path: Path) -> None:
    blob = bytearray(path.read_bytes())
    blob[-100] ^= 0xFF
    path.write_bytes(bytes(blob))


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:-500])


def _size_as_text(path: Path) -> None:
    # A hand-edited header: the size as a string (was reported as "truncated (N of N bytes)").
    blob = path.read_bytes()
    end = blob.index(b"\n", len(_native.CACHE_MAGIC))
    header = json.loads(blob[len(_native.CACHE_MAGIC) : end])
    header["size"] = str(header["size"])
    path.write_bytes(_native.CACHE_MAGIC + json.dumps(header).encode() + blob[end:])


def _garbage(path: Path) -> None:
    path.write_bytes(b"\x00" * 64)


def _foreign_version(path: Path) -> None:
    blob = path.read_bytes()
    magic = _native.CACHE_MAGIC
    end = blob.index(b"\n", len(magic))
    header = json.loads(blob[len(magic) : end])
    header["format"] = 999
    path.write_bytes(magic + json.dumps(header).encode() + blob[end:])


def _valid_header_bad_module(path: Path) -> None:
    """A well-formed entry whose payload is not a module: must fail to load, not crash."""
    blob = path.read_bytes()
    magic = _native.CACHE_MAGIC
    end = blob.index(b"\n", len(magic))
    header = json.loads(blob[len(magic) : end])
    payload = b"not bytecode at all"
    header.update(size=len(payload), sha256=hashlib.sha256(payload).hexdigest())
    path.write_bytes(magic + json.dumps(header).encode() + b"\n" + payload)


@pytest.mark.parametrize(
    "damage, message",
    [
        (_corrupt_payload, "checksum"),
        (_truncate, "truncated"),
        (_size_as_text, r"its payload has \d+ bytes where its header says '\d+'"),
        (_garbage, "not a fusedops cache entry"),
        (_foreign_version, "format 999"),
        (_valid_header_bad_module, "did not load"),
    ],
)
def test_damaged_entry_is_reported_and_recompiled(
    cache: Path, lowerings: list[str], damage, message: str
) -> None:
    good = compile_isa()
    (path,) = entries(cache)
    damage(path)
    with pytest.warns(UserWarning, match=message):
        again = compile_isa()
    assert lowerings == ["sm_90a", "sm_90a"]
    assert again.kernel_image == good.kernel_image
    # The entry was rewritten and is served again.
    compile_isa()
    assert lowerings == ["sm_90a", "sm_90a"]


def test_writes_leave_no_temporary_files(cache: Path) -> None:
    compile_isa()
    assert [p.name for p in cache.iterdir()] == [entries(cache)[0].name]


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_unwritable_cache_warns_and_still_compiles(cache: Path) -> None:
    cache.chmod(stat.S_IRUSR | stat.S_IXUSR)
    try:
        with pytest.warns(UserWarning, match="cannot write the kernel cache entry"):
            assert compile_isa().function("kernel")
    finally:
        cache.chmod(stat.S_IRWXU)


def test_cache_under_a_file_warns_and_still_compiles(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    monkeypatch.setenv("FUSEDOPS_CACHE_DIR", str(blocker / "cache"))
    with pytest.warns(UserWarning, match="cannot write the kernel cache entry"):
        assert compile_isa().function("kernel")


def test_cache_can_be_disabled(
    monkeypatch: pytest.MonkeyPatch, cache: Path, lowerings: list[str]
) -> None:
    monkeypatch.setenv("FUSEDOPS_DISABLE_DISK_CACHE", "1")
    assert _native.cache_dir() is None
    compile_isa()
    assert entries(cache) == [] and lowerings == []  # compiled in one step, nothing written


def test_default_location(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("FUSEDOPS_CACHE_DIR", raising=False)
    monkeypatch.delenv("FUSEDOPS_DISABLE_DISK_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert _native.cache_dir() == tmp_path / "fusedops"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert _native.cache_dir() == Path.home() / ".cache" / "fusedops"


@pytest.mark.parametrize("special", ["fifo", "dev-zero"])
def test_special_file_entry_is_refused_without_reading_it(
    cache: Path, lowerings: list[str], special: str
) -> None:
    # A FIFO would block the read and /dev/zero never end (issue 14): neither is opened.
    good = compile_isa()
    (path,) = entries(cache)
    path.unlink()
    if special == "fifo":
        os.mkfifo(path)
    else:
        path.symlink_to("/dev/zero")
    with pytest.warns(UserWarning, match="not a regular file"):
        again = compile_isa()
    assert again.kernel_image == good.kernel_image
    assert lowerings == ["sm_90a", "sm_90a"]
    assert path.is_file() and not path.is_symlink()  # replaced by a real entry


def test_special_tuning_cache_is_not_read(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    fifo = tmp_path / "tuning.json"
    os.mkfifo(fifo)
    assert _native._file_digest(fifo) == ""  # returns at once instead of blocking
