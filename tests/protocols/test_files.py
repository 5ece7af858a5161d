"""Profile files that are not what they seem: FIFOs, devices, loops, huge or deep files, a BOM.

Each bad file is one line naming it, the library still loads the rest, and nothing blocks:
a FIFO is never opened (opening one for reading waits for a writer forever).
"""

import os
import socket
import threading
from pathlib import Path

import pytest

from protocols import load_library
from protocols.files import MAX_BYTES, MAX_NESTING, UnreadableFile, read_text
from protocols.library import check_files, load_file
from tests.protocols.test_library import GOOD

HOT = GOOD.replace("voltage_v = 8.0", "voltage_v = 11.0")


def deep(levels: int) -> str:
    return GOOD + f"x = {'[' * levels}{']' * levels}\n"


def special_files(folder: Path) -> dict[str, Path]:
    """One of each thing a profile folder can hold that is not a regular file."""
    made = {}
    os.mkfifo(made.setdefault("fifo", folder / "fifo.toml"))
    (made.setdefault("directory", folder / "dir.toml")).mkdir()
    (folder / "loop-a.toml").symlink_to(folder / "loop-b.toml")
    (made.setdefault("loop", folder / "loop-b.toml")).symlink_to(folder / "loop-a.toml")
    made["device"] = folder / "null.toml"
    made["device"].symlink_to("/dev/null")
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(made.setdefault("socket", folder / "sock.toml")))
    sock.close()
    return made


def within(seconds, fn, *args):
    """fn(*args), failing (not hanging) if it blocks, as an open() of a FIFO would."""
    result: list = []

    def run():
        try:
            result.append((True, fn(*args)))
        except Exception as exc:
            result.append((False, exc))

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(seconds)
    assert result, f"{fn.__name__} still blocked after {seconds} s"
    ok, value = result[0]
    if not ok:
        raise value
    return value


def test_a_fifo_device_socket_directory_or_loop_in_the_profile_folder_is_skipped_with_a_line(
        tmp_path):
    (tmp_path / "good.toml").write_text(GOOD)
    made = special_files(tmp_path)
    lib = within(30, load_library, tmp_path)
    assert "crown-thick" in lib.entries
    lines = {str(e) for e in lib.errors}
    assert f"{made['fifo']}: is a FIFO (named pipe), not a regular file; not read" in lines
    assert f"{made['directory']}: is a directory, not a regular file; not read" in lines
    assert f"{made['device']}: is a character device, not a regular file; not read" in lines
    assert f"{made['socket']}: is a socket, not a regular file; not read" in lines
    assert f"{made['loop']}: is a symlink loop; not read" in lines
    assert f"{tmp_path / 'loop-a.toml'}: is a symlink loop; not read" in lines
    assert len(lib.errors) == 6  # one line per bad file, nothing else


def test_only_regular_files_are_read_even_if_a_fifo_replaces_one_after_the_stat(
        tmp_path, monkeypatch):
    # The second guard: the open is non-blocking and fstat is checked again.
    fifo = tmp_path / "swapped.toml"
    os.mkfifo(fifo)
    real_stat = os.stat
    monkeypatch.setattr(os, "stat", lambda p, *a, **k: real_stat(__file__))
    with pytest.raises(UnreadableFile, match="is a FIFO"):
        within(30, read_text, fifo)


def test_a_profile_nested_3000_deep_is_one_line_and_the_rest_of_the_library_loads(tmp_path):
    (tmp_path / "a.toml").write_text(GOOD)
    bad = tmp_path / "deep.toml"
    bad.write_text(deep(3000).replace("crown-thick", "other"))
    lib = load_library(tmp_path)
    assert "crown-thick" in lib.entries and "other" not in lib.entries
    assert [str(e) for e in lib.errors] == [
        f"{bad}:9: nested more than {MAX_NESTING} levels deep (arrays and inline tables); "
        "not parsed"]


@pytest.mark.parametrize("text", [
    "x = " + "{a = " * 3000 + "1" + "}" * 3000 + "\n",
    "[[profile]]\n" + ".".join(["a"] * 3000) + " = 1\n",  # dotted keys nest without brackets
    "[" + ".".join(["t"] * 3000) + "]\nx = 1\n",
])
def test_deep_inline_tables_and_dotted_keys_are_refused_too(tmp_path, text):
    path = tmp_path / "deep.toml"
    path.write_text(text)
    _, errors, _ = load_file(path)
    assert len(errors) == 1 and f"nested more than {MAX_NESTING} levels deep" in str(errors[0])


def test_nesting_up_to_the_limit_is_parsed_and_brackets_in_strings_do_not_count(tmp_path):
    ok = GOOD.replace('notes = "for thick skin"', 'notes = "[[[[[[[[[[[[[[[[[[[[ # {{{{"')
    _, errors, _ = load_file(_write(tmp_path, ok + "# [[[[[[[[[[[[[[[[[[[[[[[[\n"))
    assert errors == []
    # 14 levels of array under [[profile]] (itself 2 deep) is allowed; 15 is not.
    _, errors, _ = load_file(_write(tmp_path, deep(MAX_NESTING - 2)))
    assert "unknown key 'x'" in str(errors[0])
    _, errors, _ = load_file(_write(tmp_path, deep(MAX_NESTING + 1)))
    assert "nested more than" in str(errors[0])


def test_a_file_over_the_size_limit_is_skipped_unread(tmp_path):
    path = _write(tmp_path, GOOD + "#" * MAX_BYTES + "\n")
    _, errors, _ = load_file(path)
    assert [str(e) for e in errors] == [
        f"{path}: is {path.stat().st_size} bytes; at most {MAX_BYTES} bytes are read"]


def test_a_file_with_a_byte_order_mark_is_accepted(tmp_path):
    path = tmp_path / "bom.toml"
    path.write_bytes(b"\xef\xbb\xbf" + GOOD.encode())
    profiles, errors, _ = load_file(path)
    assert errors == [] and [p.name for p, _ in profiles] == ["crown-thick"]


def test_a_decoding_error_names_the_file_the_byte_offset_and_the_line(tmp_path):
    path = tmp_path / "latin1.toml"
    path.write_bytes(GOOD.replace("for thick skin", "für dicke Haut").encode("latin-1"))
    _, errors, _ = load_file(path)
    offset = GOOD.encode().index(b"for thick skin") + 1
    assert [str(e) for e in errors] == [
        f"{path}:8: not UTF-8 text: byte 0xfc at offset {offset} (invalid start byte); "
        "save the file as UTF-8"]
    # The offset counts from the start of the file, the byte-order mark included.
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    assert f"at offset {offset + 3} " in str(load_file(path)[1][0])


def test_check_warns_for_a_profile_above_10_volts_with_file_line_profile_and_value(tmp_path):
    path = _write(tmp_path, HOT)
    count, errors, warnings = check_files([path])
    assert (count, errors) == (1, [])
    assert [str(w) for w in warnings] == [
        f"{path}:6: warning: profile 'crown-thick': voltage 11.0 V is above 10.0 V: unusual "
        "for SMP, check the skin"]
    assert check_files([_write(tmp_path, GOOD.replace("8.0", "10.0"))])[2] == []


def test_the_library_carries_a_profile_s_warning_to_where_it_is_resolved(tmp_path):
    from protocols import SkinCondition, resolve

    _write(tmp_path, HOT)
    lib = load_library(tmp_path)
    entry = lib.get("crown-thick")
    assert [str(w) for w in lib.warnings] == [str(w) for w in entry.warnings]
    # Resolved above 10 V too: the resolved advisory says it, the file's is not repeated.
    same = resolve(entry.profile)
    assert entry.advisories(same.advisories) == same.advisories
    assert "11.0 V is above 10.0 V" in same.advisories[0]
    # Resolved below 10 V (thin skin takes 0.5 V off 10.4 V): still warned, with the file.
    _write(tmp_path, HOT.replace("11.0", "10.4"))
    entry = load_library(tmp_path).get("crown-thick")
    thin = resolve(entry.profile, conditions=[SkinCondition.THIN_SENSITIVE])
    assert thin.settings.voltage_v < 10 and thin.advisories == ()
    assert entry.advisories(thin.advisories) == (
        f"{tmp_path / 'p.toml'}:6: warning: profile 'crown-thick': voltage 10.4 V is above "
        "10.0 V: unusual for SMP, check the skin",)


def _write(folder: Path, text: str) -> Path:
    path = folder / "p.toml"
    path.write_text(text)
    return path
