"""Tests for mkl_tp.store._journal: all-or-nothing commits of a file under HDF5."""

import errno
import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mkl_tp.store import _journal
from mkl_tp.store._journal import PAGE_SIZE, FileLockedError, JournaledFile, journal_path, recover


def _read_disk(path):
    with open(path, "rb") as handle:
        return handle.read()


def _write(jf, offset, data):
    jf.seek(offset)
    assert jf.write(data) == len(data)


def _read(jf, offset, n):
    jf.seek(offset)
    buf = bytearray(n)
    got = jf.readinto(buf)
    return bytes(buf[:got])


_ops = st.lists(
    st.one_of(
        st.tuples(
            st.just("write"),
            st.integers(0, 5 * PAGE_SIZE),
            st.binary(min_size=1, max_size=2 * PAGE_SIZE),
        ),
        st.tuples(st.just("truncate"), st.integers(0, 6 * PAGE_SIZE)),
        st.tuples(st.just("commit")),
    ),
    max_size=25,
)


@settings(max_examples=60, deadline=None)
@given(initial=st.binary(max_size=3 * PAGE_SIZE), ops=_ops)
def test_matches_a_plain_file_and_reaches_disk_only_at_commit(tmp_path_factory, initial, ops):
    path = tmp_path_factory.mktemp("j") / "f.bin"
    path.write_bytes(initial)
    model, committed = bytearray(initial), bytes(initial)
    jf = JournaledFile(path, durable=False)
    try:
        for op in ops:
            if op[0] == "write":
                _, offset, data = op
                _write(jf, offset, data)
                if len(model) < offset:
                    model.extend(bytes(offset - len(model)))
                model[offset : offset + len(data)] = data
            elif op[0] == "truncate":
                size = op[1]
                jf.truncate(size)
                del model[size:]
                model.extend(bytes(size - len(model)))
            else:
                jf.commit()
                committed = bytes(model)
            assert _read_disk(path) == committed
            assert jf.seek(0, os.SEEK_END) == len(model)
            assert _read(jf, 0, len(model) + 10) == bytes(model)
        jf.commit()
        assert _read_disk(path) == bytes(model)
        assert not os.path.exists(journal_path(path))
    finally:
        jf.close()


def test_close_without_commit_discards_writes(tmp_path):
    path = tmp_path / "f.bin"
    path.write_bytes(b"old")
    jf = JournaledFile(path)
    _write(jf, 0, b"new content")
    jf.close()
    assert path.read_bytes() == b"old"


def test_second_writer_is_refused_with_the_file_named(tmp_path):
    path = tmp_path / "f.bin"
    first = JournaledFile(path)
    try:
        with pytest.raises(FileLockedError, match="f.bin is being written by another process"):
            JournaledFile(path)
    finally:
        first.close()
    JournaledFile(path).close()  # the lock goes with the first writer


def _interrupted_commit(path, monkeypatch):
    """Commit whose apply step dies right after the journal is complete."""
    path.write_bytes(b"A" * (2 * PAGE_SIZE))
    jf = JournaledFile(path, durable=False)
    _write(jf, 10, b"B" * 100)
    _write(jf, 3 * PAGE_SIZE, b"C" * 50)

    def die(*args, **kwargs):
        raise KeyboardInterrupt("killed")

    monkeypatch.setattr(_journal, "_apply", die)
    with pytest.raises(KeyboardInterrupt):
        jf.commit()
    monkeypatch.undo()
    jf.close()
    expected = bytearray(b"A" * (2 * PAGE_SIZE))
    expected[10:110] = b"B" * 100
    expected.extend(bytes(3 * PAGE_SIZE - len(expected)))
    expected.extend(b"C" * 50)
    return bytes(expected)


def test_complete_journal_is_replayed(tmp_path, monkeypatch):
    path = tmp_path / "f.bin"
    expected = _interrupted_commit(path, monkeypatch)
    assert path.read_bytes() == b"A" * (2 * PAGE_SIZE)  # nothing applied yet
    assert recover(path) == "replayed"
    assert path.read_bytes() == expected
    assert not os.path.exists(journal_path(path))
    assert recover(path) is None


def test_replay_is_idempotent_after_a_partial_apply(tmp_path, monkeypatch):
    path = tmp_path / "f.bin"
    expected = _interrupted_commit(path, monkeypatch)
    with open(path, "r+b") as handle:  # the first half of an apply made it to disk
        handle.seek(10)
        handle.write(b"B" * 40)
    JournaledFile(path).close()  # a writer recovers on open
    assert path.read_bytes() == expected


def test_incomplete_journal_is_dropped(tmp_path, monkeypatch):
    path = tmp_path / "f.bin"
    _interrupted_commit(path, monkeypatch)
    journal = journal_path(path)
    data = _read_disk(journal)
    with open(journal, "wb") as handle:
        handle.write(data[: len(data) // 2])  # killed while writing the journal
    assert recover(path) == "dropped"
    assert path.read_bytes() == b"A" * (2 * PAGE_SIZE)
    assert not os.path.exists(journal)


def test_disk_full_while_appending_rolls_back(tmp_path, monkeypatch):
    path = tmp_path / "f.bin"
    path.write_bytes(b"A" * PAGE_SIZE)
    jf = JournaledFile(path, durable=False)
    _write(jf, 5, b"in place")
    _write(jf, PAGE_SIZE, b"D" * (3 * PAGE_SIZE))
    real_pwrite = os.pwrite
    calls = []

    def pwrite(fd, data, offset):
        calls.append(offset)
        if len(calls) == 2:
            real_pwrite(fd, data[:100], offset)
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_pwrite(fd, data, offset)

    monkeypatch.setattr(_journal.os, "pwrite", pwrite)
    with pytest.raises(OSError, match=r"cannot write .*f\.bin: No space left on device"):
        jf.commit()
    monkeypatch.undo()
    assert path.read_bytes() == b"A" * PAGE_SIZE
    assert not os.path.exists(journal_path(path))
    # the writes are still pending and a later commit (space freed) succeeds
    jf.commit()
    jf.close()
    assert path.read_bytes()[:13] == b"AAAAAin place"
    assert len(path.read_bytes()) == 4 * PAGE_SIZE


def test_journal_write_failure_leaves_the_file_alone(tmp_path, monkeypatch):
    path = tmp_path / "f.bin"
    path.write_bytes(b"keep")
    jf = JournaledFile(path, durable=False)
    _write(jf, 0, b"lost")

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(_journal, "_write_file", full)
    with pytest.raises(OSError, match="f.bin.journal: No space left on device"):
        jf.commit()
    jf.close()
    assert path.read_bytes() == b"keep"
    assert not os.path.exists(journal_path(path))
