import os
import pickle

import pytest
import torch
from safetensors.torch import save_file

from aiprod_core.checkpoint import (
    CheckpointError,
    load_checkpoint,
    load_into,
    read_checkpoint_config,
    save_checkpoint,
    save_safetensors_atomic,
)
from aiprod_core.config import preset


def modules():
    torch.manual_seed(0)
    return {"backbone": torch.nn.Linear(4, 3), "vae": torch.nn.Conv3d(3, 2, 3)}


def test_all_in_one_round_trip_is_bit_exact(tmp_path):
    cfg, mods = preset("tiny"), modules()
    p = tmp_path / "m.safetensors"
    save_checkpoint(p, cfg, mods)
    cfg2, parts = load_checkpoint(p, require=("backbone", "vae"))
    assert cfg2 == cfg and read_checkpoint_config(p) == cfg
    for name, m in mods.items():
        for k, v in m.state_dict().items():
            assert torch.equal(parts[name][k], v) and parts[name][k].dtype == v.dtype
        fresh = type(m)(*((4, 3) if name == "backbone" else (3, 2, 3)))
        load_into(fresh, parts[name], p, name)
        assert all(torch.equal(a, b) for a, b in zip(fresh.state_dict().values(), m.state_dict().values()))


def test_single_component_file(tmp_path):
    p = tmp_path / "vae.safetensors"
    save_checkpoint(p, preset("tiny"), {"vae": modules()["vae"]})
    _, parts = load_checkpoint(p)
    assert list(parts) == ["vae"] and "weight" in parts["vae"]
    with pytest.raises(CheckpointError, match=r"has no \['backbone'\] weights; expected \['backbone'\], found \['vae'\]"):
        load_checkpoint(p, require=("backbone",))


def test_tied_weights_are_saved(tmp_path):
    emb = torch.nn.Embedding(5, 3)
    p = tmp_path / "t.safetensors"
    save_safetensors_atomic({"a": emb.weight, "b": emb.weight}, p, {})
    assert p.is_file()


def test_failed_write_keeps_the_old_file_and_leaves_no_temp(tmp_path):
    p = tmp_path / "m.safetensors"
    save_checkpoint(p, preset("tiny"), modules())
    before = p.read_bytes()
    with pytest.raises(Exception):  # noqa: B017 (any failure inside the writer)
        save_safetensors_atomic({"x": torch.zeros(2), "y": "not a tensor"}, p, {})
    assert p.read_bytes() == before
    assert os.listdir(tmp_path) == ["m.safetensors"]


def test_truncated_file_names_the_file(tmp_path):
    p = tmp_path / "cut.safetensors"
    save_checkpoint(p, preset("tiny"), modules())
    p.write_bytes(p.read_bytes()[:-40])
    with pytest.raises(CheckpointError) as e:
        load_checkpoint(p)
    assert str(p) in str(e.value) and "truncated" in str(e.value)


def test_config_less_file(tmp_path):
    p = tmp_path / "other.safetensors"
    save_file({"w": torch.zeros(2)}, str(p), metadata={"format": "pt"})
    with pytest.raises(CheckpointError, match=r"no 'aiprod\.config' metadata; expected an AIPROD checkpoint") as e:
        load_checkpoint(p)
    assert "format" in str(e.value)


def test_pickle_and_missing_files_are_refused(tmp_path):
    p = tmp_path / "evil.ckpt"
    p.write_bytes(b"\x80\x04")
    with pytest.raises(CheckpointError, match=r"evil\.ckpt is a pickle file .* never opened"):
        load_checkpoint(p)
    with pytest.raises(CheckpointError, match="no such file"):
        load_checkpoint(tmp_path / "none.safetensors")


def test_what_loads_is_decided_by_content_not_by_name(tmp_path):
    """A safetensors file loads whatever it is called; a pickle or a torch.save zip is refused whatever it is
    called, and is never unpickled (the pickle below would run code if it were)."""
    good = tmp_path / "m.safetensors"
    save_checkpoint(good, preset("tiny"), modules())
    for name in ("renamed.ckpt", "renamed.pt", "no_extension"):
        (tmp_path / name).write_bytes(good.read_bytes())
        config, parts = load_checkpoint(tmp_path / name)
        assert config == preset("tiny") and set(parts) == set(modules())
    marker = tmp_path / "ran"
    evil = pickle.dumps(Exploit(str(marker)))
    torch.save({"w": torch.zeros(2)}, tmp_path / "zip.bin")
    (tmp_path / "pickle.safetensors").write_bytes(evil)
    for name, kind in (("pickle.safetensors", "a pickle file"), ("zip.bin", "a zip archive")):
        with pytest.raises(CheckpointError, match=f"{name} is {kind}.*never opened"):
            load_checkpoint(tmp_path / name)
    assert not marker.exists()
    (tmp_path / "text.safetensors").write_text("hello, not a model")
    with pytest.raises(CheckpointError, match="is not a safetensors file"):
        load_checkpoint(tmp_path / "text.safetensors")
    with pytest.raises(CheckpointError, match=r"is a folder; expected a \.safetensors file, e\.g\. .*m\.safetensors"):
        load_checkpoint(tmp_path)


class Exploit:
    """Unpickling this creates a file: proof that a loader ran the pickle."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


def test_unprefixed_all_in_one_keys(tmp_path):
    p = tmp_path / "bad.safetensors"
    save_file({"w": torch.zeros(2)}, str(p), metadata={"aiprod.config": preset("tiny").to_json()})
    with pytest.raises(CheckpointError, match="key 'w' has no component prefix"):
        load_checkpoint(p)


def test_mismatched_weights_list_what_differs(tmp_path):
    p = tmp_path / "m.safetensors"
    save_checkpoint(p, preset("tiny"), modules())
    _, parts = load_checkpoint(p)
    with pytest.raises(CheckpointError) as e:
        load_into(torch.nn.Linear(4, 5), parts["backbone"], p, "backbone")
    msg = str(e.value)
    assert "backbone weights do not match" in msg and "weight: expected (5, 4), found (3, 4)" in msg
    with pytest.raises(CheckpointError, match="missing 2 keys"):
        load_into(torch.nn.Sequential(torch.nn.Linear(4, 3)), parts["backbone"], p, "backbone")
