"""Model files are untrusted input: never unpickled, every bad file rejected before use,
names never paths, and the store never reads or writes outside its folder."""

from __future__ import annotations

import io
import json
import os
import pickle
import re
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vlm_anomaly.errors import CorruptModelError, InvalidModelNameError, ModelNotFoundError, VlmAnomalyError
from vlm_anomaly.store import ModelStore
from vlm_anomaly.store import models as store_models
from vlm_anomaly.store.models import encode_model, read_model_file

from .workers import big_model

SRC = Path(__file__).resolve().parents[2] / "src"


@pytest.fixture(scope="module")
def good_bytes() -> bytes:
    return encode_model(big_model(1, frames=50, dim=16))


def members(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        return {i.filename: zf.read(i) for i in zf.infolist()}


def rebuild(parts: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in parts.items():
            zf.writestr(name, data)
    return buf.getvalue()


def with_meta(data: bytes, edit) -> bytes:
    parts = members(data)
    meta = json.loads(parts["model.json"])
    edit(meta)
    parts["model.json"] = json.dumps(meta).encode()
    return rebuild(parts)


def with_array(data: bytes, name: str, arr: np.ndarray, *, allow_pickle: bool = False) -> bytes:
    parts = members(data)
    b = io.BytesIO()
    np.save(b, arr, allow_pickle=allow_pickle)
    parts[f"arrays/{name}.npy"] = b.getvalue()
    return rebuild(parts)


def load_bytes(tmp_path: Path, data: bytes, name: str = "x"):
    p = tmp_path / f"{name}.vlmodel"
    p.write_bytes(data)
    return read_model_file(p)


# -- no pickle anywhere on the load path ----------------------------------------------------------

def test_source_never_unpickles():
    """grep src/: no pickle import, every np.load with allow_pickle=False, torch.load weights_only."""
    problems = []
    for f in SRC.rglob("*.py"):
        text = f.read_text()
        for m in re.finditer(r"^\s*(import pickle|from pickle|import cPickle|import dill|import joblib)",
                             text, re.M):
            problems.append(f"{f.name}: {m.group(0).strip()}")
        for call in ("np.load(", "numpy.load(", "torch.load("):
            for m in re.finditer(re.escape(call), text):
                args = text[m.end(): text.find(")", m.end()) + 1]
                needed = "weights_only=True" if call == "torch.load(" else "allow_pickle=False"
                if needed not in args:
                    problems.append(f"{f.name}: {call}{args}")
        if "pickle.load" in text or "joblib.load" in text:
            problems.append(f"{f.name}: pickle.load")
    assert not problems, problems


def test_pickled_object_array_is_refused(tmp_path, good_bytes):
    """A model zip holding a pickled object array (code execution on load) is refused unread."""
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    arr = np.array([Evil(), 1], dtype=object)
    data = with_array(good_bytes, "detector.mean", arr, allow_pickle=True)
    assert b"system" in members(data)["arrays/detector.mean.npy"]  # really a pickle inside
    with pytest.raises(CorruptModelError, match="dtype object not allowed"):
        load_bytes(tmp_path, data)
    assert not marker.exists()
    # and a raw pickle instead of a zip
    with pytest.raises(CorruptModelError):
        load_bytes(tmp_path, pickle.dumps({"a": 1}))


# -- tampered, truncated, inconsistent --------------------------------------------------------

def test_truncated_at_every_region_is_rejected(tmp_path, good_bytes):
    n = len(good_bytes)
    for cut in sorted({0, 1, 4, 30, 100, n // 4, n // 2, 3 * n // 4, n - 30, n - 1}):
        with pytest.raises(CorruptModelError):
            load_bytes(tmp_path, good_bytes[:cut])


def test_tampered_bytes_are_rejected(tmp_path, good_bytes):
    """Flipped bytes inside compressed members fail the CRC or the checks, never load wrongly."""
    rng = np.random.default_rng(0)
    rejected = 0
    for _ in range(25):
        buf = bytearray(good_bytes)
        i = int(rng.integers(40, len(buf) - 200))
        buf[i] ^= 0xFF
        try:
            m = load_bytes(tmp_path, bytes(buf))
        except CorruptModelError:
            rejected += 1
            continue
        # a flip in zip padding/metadata that changes nothing is fine: the model must be intact
        ref = read_model_file_bytes(tmp_path, good_bytes)
        x = np.random.default_rng(1).normal(size=(3, 16))
        assert np.allclose(m.decision_function(x), ref.decision_function(x))
    assert rejected >= 20


def read_model_file_bytes(tmp_path, data):
    return load_bytes(tmp_path, data, "ref")


@pytest.mark.parametrize("edit, why", [
    (lambda m: m.update(format_version=2), "unsupported format version 2"),
    (lambda m: m.update(format_version="1"), "unsupported format version"),
    (lambda m: m.update(format="something-else"), "not a vlm-anomaly model"),
    (lambda m: m["encoder"].update(dim=0), "dim out of range"),
    (lambda m: m["encoder"].update(dim=17), "does not match"),
    (lambda m: m["detector"].update(name="no-such-detector"), "no-such-detector"),
    (lambda m: m["detector"].update(params={"kernel": "pickle"}), "kernel"),
    (lambda m: m.update(smoothing_window=10**12), "smoothing_window"),
    (lambda m: m["training"].update(interval_ms=-5), "interval_ms"),
    (lambda m: m.pop("encoder"), "encoder"),
    (lambda m: m.update(encoder="efficientnet"), "invalid model"),
])
def test_bad_metadata_is_rejected(tmp_path, good_bytes, edit, why):
    with pytest.raises(CorruptModelError, match=re.escape(why)):
        load_bytes(tmp_path, with_meta(good_bytes, edit))


def test_nan_and_infinity_are_rejected(tmp_path, good_bytes):
    for raw in (b'"threshold": NaN', b'"threshold": Infinity', b'"threshold": -Infinity'):
        parts = members(good_bytes)
        parts["model.json"] = re.sub(rb'"threshold": [-0-9.e]+', raw, parts["model.json"], count=1)
        assert raw in parts["model.json"]
        with pytest.raises(CorruptModelError, match="not allowed"):
            load_bytes(tmp_path, rebuild(parts))
    sv = members(good_bytes)["arrays/detector.support_vectors.npy"]
    arr = np.load(io.BytesIO(sv), allow_pickle=False).copy()
    arr[0, 0] = np.nan
    with pytest.raises(CorruptModelError, match="NaN"):
        load_bytes(tmp_path, with_array(good_bytes, "detector.support_vectors", arr))
    with pytest.raises(CorruptModelError, match="invalid values"):
        load_bytes(tmp_path, with_array(good_bytes, "train_embeddings", np.full((3, 16), np.inf, np.float16)))


@pytest.mark.parametrize("name, arr", [
    ("detector.mean", np.zeros(15)),
    ("detector.scale", np.zeros((16, 1))),
    ("detector.dual_coef", np.zeros(3)),
    ("detector.scalars", np.zeros(5)),
    ("train_embeddings", np.zeros((4, 8), np.float16)),
    ("train_refs", np.zeros((2, 3), np.int64)),
    ("detector.mean", np.array(["a"] * 16)),
])
def test_wrong_array_shapes_and_dtypes_are_rejected(tmp_path, good_bytes, name, arr):
    with pytest.raises(CorruptModelError):
        load_bytes(tmp_path, with_array(good_bytes, name, arr))


def test_npy_header_claiming_giant_shape_is_rejected_before_allocation(tmp_path, good_bytes):
    """A 100-byte .npy whose header claims (10^12, 10^6) float64 is refused, nothing allocated."""
    header = "{'descr': '<f8', 'fortran_order': False, 'shape': (1000000000000, 1000000), }"
    header += " " * (63 - len(header) % 64) + "\n"
    npy = b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode() + b"\0" * 64
    parts = members(good_bytes)
    parts["arrays/train_embeddings.npy"] = npy
    with pytest.raises(CorruptModelError, match="too large"):
        load_bytes(tmp_path, rebuild(parts))


def test_zip_member_declaring_giant_size_is_rejected(tmp_path, good_bytes, monkeypatch):
    """The central directory claims a 3 GiB member (a zip bomb's signature): refused unread."""
    data = bytearray(good_bytes)
    parts = members(good_bytes)
    name = b"arrays/train_embeddings.npy"
    cd = data.find(b"PK\x01\x02" + b"", data.find(b"PK\x01\x02"))
    while cd != -1:
        n = struct.unpack("<H", data[cd + 28: cd + 30])[0]
        if bytes(data[cd + 46: cd + 46 + n]) == name:
            data[cd + 24: cd + 28] = struct.pack("<I", 3 << 30)  # uncompressed size
            break
        cd = data.find(b"PK\x01\x02", cd + 4)
    assert cd != -1 and name.decode() in parts
    with pytest.raises(CorruptModelError, match="over the limit|too large"):
        load_bytes(tmp_path, bytes(data))
    # an honest zip bomb (zeros compress ~1000:1), against a limit lowered to keep the test fast
    monkeypatch.setattr(store_models, "MAX_ARRAY_BYTES", 8 << 20)
    bomb = io.BytesIO()
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("model.json", parts["model.json"])
        zf.writestr("arrays/train_embeddings.npy", bytes(9 << 20))
    assert len(bomb.getvalue()) < 100_000
    with pytest.raises(CorruptModelError, match="over the limit"):
        load_bytes(tmp_path, bomb.getvalue())


def test_deeply_nested_json_is_rejected(tmp_path, good_bytes):
    parts = members(good_bytes)
    parts["model.json"] = b"[" * 200_000 + b"]" * 200_000
    with pytest.raises(CorruptModelError):
        load_bytes(tmp_path, rebuild(parts))


def test_extra_and_duplicate_members_are_rejected(tmp_path, good_bytes):
    parts = members(good_bytes)
    parts["../../etc/evil.npy"] = b"x"
    with pytest.raises(CorruptModelError, match="unexpected member"):
        load_bytes(tmp_path, rebuild(parts))
    buf = io.BytesIO(good_bytes)
    with zipfile.ZipFile(buf, "a") as zf, pytest.warns(UserWarning):
        zf.writestr("arrays/detector.mean.npy", b"dup")
    with pytest.raises(CorruptModelError, match="duplicate"):
        load_bytes(tmp_path, buf.getvalue())


def _npy_header(text: str) -> bytes:
    raw = text.encode("latin1")
    raw += b" " * ((64 - (10 + len(raw) + 1) % 64) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + len(raw).to_bytes(2, "little") + raw


@pytest.mark.parametrize("header", [
    "{'descr': '<f8', 'fortran_order': False, 'shape': (3,\n",  # tokenize.TokenError inside numpy
    "{'descr': '<f8', 'fortran_order': False, 'shape': (3,), " + "'" * 3,  # unterminated string
    "{'descr': '<f8', 'fortran_order': False, 'shape': (99999999999999999999999999,), }",  # overflows int64
    "{'descr': '<f8', 'fortran_order': False, 'shape': (2, -3), }",
    "{'descr': '|O', 'fortran_order': False, 'shape': (1,), }",  # object arrays would unpickle
])
def test_hostile_npy_headers_are_corrupt_model_errors(tmp_path, good_bytes, header):
    """Found by the fuzz test in a CI run: numpy's header parser raises more than ValueError."""
    parts = members(good_bytes)
    name = next(n for n in parts if n.startswith("arrays/"))
    parts[name] = _npy_header(header) + b"\0" * 64
    path = tmp_path / "hostile.vlmodel"
    path.write_bytes(rebuild(parts))
    with pytest.raises(CorruptModelError):
        read_model_file(path)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(edits=st.lists(st.tuples(st.floats(0, 1), st.integers(0, 255)), min_size=1, max_size=8),
       cut=st.one_of(st.none(), st.floats(0, 1)),
       json_junk=st.one_of(st.none(), st.binary(max_size=64)))
def test_fuzz_model_loader_only_raises_library_errors(tmp_path_factory, good_bytes, edits, cut, json_junk):
    """Mutated model files: load a model that works, or raise a VlmAnomalyError subclass."""
    data = good_bytes
    if json_junk is not None:
        parts = members(good_bytes)
        meta = parts["model.json"]
        parts["model.json"] = meta[: len(meta) // 2] + json_junk + meta[len(meta) // 2:]
        data = rebuild(parts)
    buf = bytearray(data)
    for pos, val in edits:
        buf[int(pos * (len(buf) - 1))] = val
    if cut is not None:
        buf = buf[: int(cut * len(buf))]
    path = tmp_path_factory.getbasetemp() / "fuzz.vlmodel"
    path.write_bytes(bytes(buf))
    try:
        m = read_model_file(path)
    except VlmAnomalyError:
        return
    scores = m.decision_function(np.zeros((2, m.encoder.dim)))
    assert scores.shape == (2,) and np.all(np.isfinite(scores))


# -- names and paths --------------------------------------------------------------------------

HOSTILE_NAMES = [
    "", ".", "..", "../x", "../../etc/passwd", "/etc/passwd", "a/b", "a\\b", "x\0y", "x\n", " x",
    "a" * 65, "a" * 5000, ".hidden", "-rf", "x..y", "trailing.", "ｍodel", "modеl", "mo\u200bdel",
    "café", "CON/", "~root", "$HOME", "name with space", "x:y", "%2e%2e%2fx",
]


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_hostile_model_names_are_refused_everywhere(tmp_path, name):
    store = ModelStore(tmp_path / "models")
    model = big_model(0, frames=4, dim=8)
    for op in (lambda: store.save(model, name), lambda: store.load(name), lambda: store.delete(name),
               lambda: store.show(name), lambda: store.rename("ok", name), lambda: store.path_for(name)):
        with pytest.raises(InvalidModelNameError):
            op()
    assert [p.name for p in tmp_path.rglob("*") if p.name not in ("models", ".lock")] == []


def test_store_never_follows_symlinked_model_files(tmp_path):
    """A model file that is a symlink (to a file outside the store) is neither read nor written."""
    store = ModelStore(tmp_path / "models")
    outside = tmp_path / "outside.vlmodel"
    outside.write_bytes(encode_model(big_model(1, frames=4, dim=8)))
    before = outside.read_bytes()
    store.root.mkdir()
    (store.root / "evil.vlmodel").symlink_to(outside)
    with pytest.raises(CorruptModelError, match="symlink"):
        store.load("evil")
    with pytest.raises(InvalidModelNameError, match="symlink"):
        store.save(big_model(2, frames=4, dim=8), "evil")
    assert "evil" not in store.names()
    store.delete("evil")  # removes the link itself, never its target
    assert outside.read_bytes() == before
    # the lock file too: a symlinked .lock must not create or open a file elsewhere
    (store.root / ".lock").unlink(missing_ok=True)
    (store.root / ".lock").symlink_to(tmp_path / "created-outside")
    with pytest.raises(VlmAnomalyError):
        store.save(big_model(3, frames=4, dim=8), "fine")
    assert not (tmp_path / "created-outside").exists()


def test_hardlinked_model_file_is_replaced_not_written_through(tmp_path):
    store = ModelStore(tmp_path / "models")
    store.save(big_model(1, frames=4, dim=8), "a")
    outside = tmp_path / "outside-copy"
    os.link(store.path_for("a"), outside)
    before = outside.read_bytes()
    store.save(big_model(2, frames=4, dim=8), "a")
    assert outside.read_bytes() == before and store.load("a").extra["version"] == 2


def test_symlinked_store_root_is_the_store(tmp_path):
    """Decision: the root may be a symlink (a store moved to another disk); it is resolved once."""
    real = tmp_path / "disk2" / "models"
    real.mkdir(parents=True)
    (tmp_path / "models").symlink_to(real)
    store = ModelStore(tmp_path / "models")
    store.save(big_model(1, frames=4, dim=8), "a")
    assert (real / "a.vlmodel").is_file() and store.names() == ["a"]
    assert store.path_for("a").parent == real.resolve()


def test_fifo_and_folders_named_like_models_do_not_hang_or_crash(tmp_path):
    store = ModelStore(tmp_path / "models")
    store.save(big_model(1, frames=4, dim=8), "good")
    os.mkfifo(store.root / "fifo.vlmodel")
    (store.root / "dir.vlmodel").mkdir()
    assert store.names() == ["good"]  # a FIFO would block a plain open() forever
    with pytest.raises(ModelNotFoundError):
        store.load("fifo")
    with pytest.raises(CorruptModelError, match="not a regular file"):
        read_model_file(store.root / "fifo.vlmodel")


@pytest.mark.parametrize("edit, why", [
    (lambda c: c["grid"].update(work_height=10**6), "work_height"),  # a resize to terabytes
    (lambda c: c["grid"].update(rows=0), "rows"),
    (lambda c: c["grid"].update(blur_sigma=-1.0), "blur_sigma"),
    (lambda c: c.update(radius=-3), "radius"),  # crashed mid-scoring ("need at least one array")
    (lambda c: c.update(k=10**6), "k must be"),
    (lambda c: c.update(smoothing_window=10**9), "smoothing_window"),
])
def test_motion_model_hyper_parameters_out_of_range_are_rejected(tmp_path, default_street_model, edit, why):
    """The default detector's saved hyper-parameters are untrusted too: a value no fit ever writes is a
    CorruptModelError when the file is read, not an allocation of terabytes or a crash while scoring."""
    good = (default_street_model.home / "models" / "street.vlmodel").read_bytes()
    assert load_bytes(tmp_path, good, "ref").detector.name == "motion"
    with pytest.raises(CorruptModelError, match=why):
        load_bytes(tmp_path, with_meta(good, lambda m: edit(m["detector"]["motion"]["config"])))
