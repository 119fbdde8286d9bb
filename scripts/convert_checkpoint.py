#!/usr/bin/env python3
"""Convert a PyTorch checkpoint (.pth / .pth.tar / DomainBed model.pkl) to safetensors with
torchvision state-dict names, for `model load FILE architecture=resnet18|resnet50` in fqat-shell.

    scripts/convert_checkpoint.py moco_v2_800ep_pretrain.pth.tar runs/moco.safetensors
    scripts/convert_checkpoint.py model.pkl runs/domainbed.safetensors --layout domainbed

Needs Python 3 and numpy only: torch is never imported. A checkpoint is a pickle, and unpickling
can run arbitrary code, so the file is read with a restricted unpickler that resolves only the
globals a state dict needs (torch's tensor rebuild functions, its storage classes, OrderedDict)
and refuses every other global with an error naming it, before anything is called.

Layouts (docs/export.md, "Checkpoint conversion"):
  torchvision  a plain state dict (or {"state_dict": ...}) with torchvision names
  moco-v2      {"state_dict": ...} with "module.encoder_q." prefixes; the key encoder
               ("module.encoder_k."), the queue and the projection head "fc.*" are dropped
  domainbed    DomainBed's model.pkl: {"model_dict": ...} with "featurizer.network." (the
               ResNet), "classifier." (renamed "fc.") and "network.0.network." / "network.1."
               (the same tensors again, checked equal and dropped)
  auto         (default) picks one of the above from the keys

The output's __metadata__ records the source file name, its SHA-256, the layout, the prefix
mapping and every dropped key, so a converted file says where it came from.
"""
import _compat_pickle
import argparse
import collections
import hashlib
import io
import json
import os
import pickle
import struct
import sys
import zipfile

import numpy as np

FORMAT = "fqat-shell.converted.v1"


class CheckpointError(Exception):
    """A problem with the input that the user can act on."""


# ---------------------------------------------------------------------------------------------
# Restricted unpickling of torch's two on-disk formats.

class _Storage:
    """Stands in for a torch storage class (torch.FloatStorage, ...): only carries its dtype."""

    def __init__(self, name, dtype):
        self.name, self.dtype = name, dtype


# dtype of each storage class; "bfloat16" has no numpy dtype and is read as raw uint16.
_STORAGES = {
    "FloatStorage": np.dtype("<f4"), "DoubleStorage": np.dtype("<f8"), "HalfStorage": np.dtype("<f2"),
    "BFloat16Storage": "bfloat16", "LongStorage": np.dtype("<i8"), "IntStorage": np.dtype("<i4"),
    "ShortStorage": np.dtype("<i2"), "CharStorage": np.dtype("i1"), "ByteStorage": np.dtype("u1"),
    "BoolStorage": np.dtype("?"),
}


class BFloat16Array:
    """A bfloat16 tensor kept as its raw uint16 bits (written back as BF16)."""

    def __init__(self, bits):
        self.bits = bits
        self.shape = bits.shape


def _element_size(dtype):
    return 2 if dtype == "bfloat16" else dtype.itemsize


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False, backward_hooks=None,
                       metadata=None):
    """torch._utils._rebuild_tensor_v2 on a numpy storage: a strided view, copied to C order."""
    data, dtype = storage
    size, stride = tuple(int(s) for s in size), tuple(int(s) for s in stride)
    raw = data.view(np.uint16) if dtype == "bfloat16" else data
    if not size:
        out = raw[storage_offset:storage_offset + 1].reshape(())
    else:
        needed = storage_offset + sum((n - 1) * st for n, st in zip(size, stride)) + 1 if all(size) else 0
        if needed > raw.size:
            raise CheckpointError(f"a tensor of size {list(size)} at offset {storage_offset} reaches past its "
                                  f"storage of {raw.size} elements: the checkpoint is corrupt")
        if not all(size):
            out = np.zeros(size, raw.dtype)
        else:
            out = np.lib.stride_tricks.as_strided(raw[storage_offset:], shape=size,
                                                  strides=[st * raw.itemsize for st in stride])
    out = np.array(out, order="C", copy=True)   # (ascontiguousarray would make a 0-d tensor 1-d)
    return BFloat16Array(out) if dtype == "bfloat16" else out


def _rebuild_tensor(storage, storage_offset, size, stride):
    return _rebuild_tensor_v2(storage, storage_offset, size, stride)


def _rebuild_parameter(data, requires_grad, backward_hooks):
    return data


def _rebuild_parameter_with_state(data, requires_grad, backward_hooks, state):
    return data


# The only globals a checkpoint may name. Anything else is refused, by name, before it is called.
_ALLOWED = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter_with_state,
}
for _name, _dtype in _STORAGES.items():
    _ALLOWED[("torch", _name)] = _Storage(_name, _dtype)


class RestrictedUnpickler(pickle.Unpickler):
    """Resolves only `_ALLOWED` globals; storages come from `load_storage(pid)`. `rebuild` replaces
    torch's tensor rebuild functions (the legacy format rebuilds tensors after reading their bytes)."""

    def __init__(self, file, load_storage, rebuild=None):
        super().__init__(file)
        self._load_storage = load_storage
        self._rebuild = rebuild

    def find_class(self, module, name):
        # Protocol-2 pickles (torch's) may name Python 2 modules; report the Python 3 global.
        if (module, name) in _compat_pickle.NAME_MAPPING:
            module, name = _compat_pickle.NAME_MAPPING[(module, name)]
        elif module in _compat_pickle.IMPORT_MAPPING:
            module = _compat_pickle.IMPORT_MAPPING[module]
        if self._rebuild is not None and (module, name) in _REBUILDS:
            return self._rebuild
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise CheckpointError(
                f"refusing to load global '{module}.{name}': a state-dict checkpoint needs only torch's tensor "
                "rebuild functions, its storage classes and collections.OrderedDict, and unpickling anything else "
                "could run code. Nothing was executed. If this file is a whole pickled model, re-save its "
                "state_dict() with torch.save in a trusted environment.") from None

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and pid and pid[0] == "storage"):
            raise CheckpointError(f"unsupported persistent id {pid!r:.80}: only tensor storages are allowed")
        return self._load_storage(pid)


_REBUILDS = {("torch._utils", "_rebuild_tensor_v2"), ("torch._utils", "_rebuild_tensor")}


def _storage_of(storage_type):
    if not isinstance(storage_type, _Storage):
        raise CheckpointError(f"persistent id names {storage_type!r:.60} where a torch storage class was expected")
    return storage_type.dtype


def _load_zip(path):
    """torch >= 1.6 format: a zip with <root>/data.pkl and one file per storage, <root>/data/<key>."""
    with zipfile.ZipFile(path) as z:
        names = z.namelist()
        pkl = [n for n in names if n.endswith("/data.pkl") or n == "data.pkl"]
        if len(pkl) != 1:
            raise CheckpointError(f"'{path}' is a zip file but not a torch checkpoint (no single data.pkl inside)")
        root = pkl[0][: -len("data.pkl")]
        cache = {}

        def load_storage(pid):
            if len(pid) != 5:
                raise CheckpointError(f"malformed storage id {pid!r:.80}")
            _, storage_type, key, _location, numel = pid
            dtype = _storage_of(storage_type)
            if key not in cache:
                member = f"{root}data/{key}"
                if member not in names:
                    raise CheckpointError(f"storage '{member}' named by data.pkl is missing from the archive")
                raw = z.read(member)
                cache[key] = np.frombuffer(raw, dtype=np.uint16 if dtype == "bfloat16" else dtype).copy()
            return cache[key], dtype

        return RestrictedUnpickler(io.BytesIO(z.read(pkl[0])), load_storage).load()


_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C


def _load_legacy(path, f):
    """torch < 1.6 format (and `_use_new_zipfile_serialization=False`): four pickles, then each
    storage's data as an int64 element count followed by its bytes, in the order of a key list."""
    def plain(what):
        def no_storage(pid):
            raise CheckpointError(f"unexpected storage in the {what}")
        try:
            return RestrictedUnpickler(f, no_storage).load()
        except CheckpointError:
            raise
        except Exception as e:
            raise CheckpointError(f"'{path}' is not a PyTorch checkpoint: cannot read its {what} ({e})") from None

    if plain("magic number") != _LEGACY_MAGIC:
        raise CheckpointError(f"'{path}' is a pickle without torch's magic number: not a PyTorch checkpoint")
    plain("protocol version")
    plain("system info")
    storages = {}   # key -> [dtype, numel, array or None]
    views = []

    def load_storage(pid):
        if len(pid) != 6:
            raise CheckpointError(f"malformed storage id {pid!r:.80}")
        _, storage_type, key, _location, numel, view = pid
        dtype = _storage_of(storage_type)
        entry = storages.setdefault(key, [dtype, int(numel), None])
        if view is not None:
            view_key, offset, view_size = view
            box = [entry, int(offset), int(view_size), None]
            views.append(box)
            return _LazyStorage(box, dtype)
        return _LazyStorage([entry, 0, None, None], dtype)

    obj = RestrictedUnpickler(f, load_storage, rebuild=_lazy_rebuild).load()
    keys = plain("storage key list")
    for key in keys:
        if key not in storages:
            raise CheckpointError(f"storage key {key!r:.40} listed but never used")
        dtype, numel, _ = storages[key]
        head = f.read(8)
        if len(head) != 8:
            raise CheckpointError(f"'{path}' ends before the data of storage {key}")
        (count,) = struct.unpack("<q", head)
        size = _element_size(dtype)
        raw = f.read(count * size)
        if count < 0 or len(raw) != count * size:
            raise CheckpointError(f"'{path}' ends inside the data of storage {key}")
        storages[key][2] = np.frombuffer(raw, dtype=np.uint16 if dtype == "bfloat16" else dtype).copy()
    return _resolve_lazy(obj)


class _LazyStorage:
    """A legacy storage whose bytes come after the pickle: tensors are rebuilt once they are read."""

    def __init__(self, box, dtype):
        self.box, self.dtype = box, dtype


class _LazyTensor:
    def __init__(self, args):
        self.args = args


def _lazy_rebuild(storage, *args):
    """_rebuild_tensor(_v2) in the legacy format: the storage's bytes come later."""
    if not isinstance(storage, _LazyStorage):
        raise CheckpointError("a tensor refers to something that is not a storage")
    return _LazyTensor((storage,) + args)


def _resolve_lazy(obj):
    if isinstance(obj, _LazyTensor):
        storage, offset, size, stride = obj.args[:4]
        entry, view_offset, view_size, _ = storage.box
        data = entry[2]
        if data is None:
            raise CheckpointError("a tensor refers to a storage whose data is missing")
        if view_size is not None:
            data = data[view_offset:view_offset + view_size]
        return _rebuild_tensor_v2((data, storage.dtype), offset, size, stride)
    if isinstance(obj, dict):
        out = obj.__class__() if isinstance(obj, collections.OrderedDict) else {}
        for k, v in obj.items():
            out[k] = _resolve_lazy(v)
        return out
    if isinstance(obj, list):
        return [_resolve_lazy(v) for v in obj]
    if isinstance(obj, tuple):
        return tuple(_resolve_lazy(v) for v in obj)
    return obj


def load_checkpoint(path):
    """Reads a torch checkpoint without torch. Returns nested dicts/lists with numpy arrays."""
    try:
        if zipfile.is_zipfile(path):
            return _load_zip(path)
        with open(path, "rb") as f:
            return _load_legacy(path, f)
    except CheckpointError:
        raise
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, zipfile.BadZipFile) as e:
        raise CheckpointError(f"'{path}' could not be read as a PyTorch checkpoint: {e}") from None


# ---------------------------------------------------------------------------------------------
# Layouts: from checkpoint keys to torchvision names.

def _tensors(d):
    return {k: v for k, v in d.items() if isinstance(v, (np.ndarray, BFloat16Array))}


def detect_layout(obj):
    if isinstance(obj, dict) and "model_dict" in obj:
        return "domainbed"
    sd = obj.get("state_dict", obj) if isinstance(obj, dict) else None
    if isinstance(sd, dict) and any(str(k).startswith("module.encoder_q.") for k in sd):
        return "moco-v2"
    if isinstance(sd, dict) and _tensors(sd):
        return "torchvision"
    raise CheckpointError("cannot tell the layout: expected a state dict, {'state_dict': …} (torchvision, MoCo-v2) or "
                          "{'model_dict': …} (DomainBed); give --layout to say which")


def map_state_dict(obj, layout):
    """Returns (tensors by torchvision name, mapping description, dropped keys with reasons)."""
    dropped = []
    if layout == "torchvision":
        sd = obj.get("state_dict", obj) if isinstance(obj, dict) and "state_dict" in obj else obj
        if not isinstance(sd, dict):
            raise CheckpointError("torchvision layout: the checkpoint is not a dict of tensors")
        out = {}
        for k, v in sd.items():
            name = k[len("module."):] if k.startswith("module.") else k
            if isinstance(v, (np.ndarray, BFloat16Array)):
                out[name] = v
            else:
                dropped.append((k, "not a tensor"))
        mapping = "names kept (a leading 'module.' from DataParallel removed)"
    elif layout == "moco-v2":
        sd = obj.get("state_dict") if isinstance(obj, dict) else None
        if not isinstance(sd, dict):
            raise CheckpointError("moco-v2 layout: the checkpoint has no 'state_dict' entry")
        out = {}
        prefix = "module.encoder_q."
        for k, v in sd.items():
            if not k.startswith(prefix):
                dropped.append((k, "not the query encoder (module.encoder_q.)"))
            elif k.startswith(prefix + "fc."):
                dropped.append((k, "MoCo projection head fc.*: a classifier for the target task is trained instead"))
            elif not isinstance(v, (np.ndarray, BFloat16Array)):
                dropped.append((k, "not a tensor"))
            else:
                out[k[len(prefix):]] = v
        if not out:
            raise CheckpointError("moco-v2 layout: no 'module.encoder_q.' tensors in the state dict")
        mapping = "'module.encoder_q.' -> '' (query encoder)"
    elif layout == "domainbed":
        sd = obj.get("model_dict") if isinstance(obj, dict) else None
        if not isinstance(sd, dict):
            raise CheckpointError("domainbed layout: the file has no 'model_dict' entry (is it DomainBed's model.pkl?)")
        out, duplicates = {}, {}
        for k, v in sd.items():
            if not isinstance(v, (np.ndarray, BFloat16Array)):
                dropped.append((k, "not a tensor"))
                continue
            if k.startswith("featurizer.network."):
                out[k[len("featurizer.network."):]] = v
            elif k.startswith("classifier."):
                out["fc." + k[len("classifier."):]] = v
            elif k.startswith("network.0.network."):
                duplicates[k[len("network.0.network."):]] = (k, v)
            elif k.startswith("network.1."):
                duplicates["fc." + k[len("network.1."):]] = (k, v)
            else:
                dropped.append((k, "not part of the featurizer or classifier"))
        for name, (k, v) in duplicates.items():
            if name in out:
                a = out[name].bits if isinstance(out[name], BFloat16Array) else out[name]
                b = v.bits if isinstance(v, BFloat16Array) else v
                if a.shape != b.shape or not np.array_equal(a, b):
                    raise CheckpointError(f"domainbed layout: '{k}' differs from the featurizer/classifier tensor it "
                                          f"should duplicate ('{name}'); the file is inconsistent")
                dropped.append((k, "the same tensors as featurizer.network.* / classifier.* (ERM's network = "
                                   "Sequential(featurizer, classifier)), checked equal"))
            else:
                out[name] = v
        if not out:
            raise CheckpointError("domainbed layout: no 'featurizer.network.' or 'network.0.network.' tensors")
        mapping = ("'featurizer.network.' -> '', 'classifier.' -> 'fc.'; "
                   "'network.0.network.' and 'network.1.' (the same tensors) checked equal and dropped")
    else:
        raise CheckpointError(f"unknown layout '{layout}' (torchvision, moco-v2, domainbed, auto)")
    return out, mapping, dropped


# ---------------------------------------------------------------------------------------------
# safetensors writer (the format is a little-endian u64 header length, JSON header, raw data).

_DTYPES = {np.dtype("<f4"): "F32", np.dtype("<f8"): "F64", np.dtype("<f2"): "F16", np.dtype("<i8"): "I64",
           np.dtype("<i4"): "I32", np.dtype("<i2"): "I16", np.dtype("i1"): "I8", np.dtype("u1"): "U8",
           np.dtype("?"): "BOOL"}


def write_safetensors(tensors, metadata, path):
    header, chunks, offset = {}, [], 0
    for name in sorted(tensors):
        v = tensors[name]
        if isinstance(v, BFloat16Array):
            arr, dtype = np.ascontiguousarray(v.bits, "<u2"), "BF16"
        else:
            arr = v if v.flags.c_contiguous else np.array(v, order="C")   # keeps 0-d tensors 0-d
            arr = arr.astype(arr.dtype.newbyteorder("<")) if arr.dtype.byteorder == ">" else arr
            dtype = _DTYPES.get(arr.dtype)
            if dtype is None:
                raise CheckpointError(f"tensor '{name}' has dtype {arr.dtype}, which safetensors cannot hold here")
        data = arr.tobytes()
        header[name] = {"dtype": dtype, "shape": list(arr.shape), "data_offsets": [offset, offset + len(data)]}
        chunks.append(data)
        offset += len(data)
    header["__metadata__"] = metadata
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for c in chunks:
            f.write(c)
    os.replace(tmp, path)


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def convert(source, output, layout="auto", log=print):
    if not os.path.isfile(source):
        raise CheckpointError(f"no such file '{source}'")
    obj = load_checkpoint(source)
    chosen = detect_layout(obj) if layout == "auto" else layout
    tensors, mapping, dropped = map_state_dict(obj, chosen)
    digest = sha256(source)
    metadata = {
        "format": FORMAT,
        "source": os.path.basename(source),
        "source_sha256": digest,
        "layout": chosen,
        "mapping": mapping,
        "dropped": json.dumps([k for k, _ in dropped]),
        "converter": "scripts/convert_checkpoint.py",
    }
    out_dir = os.path.dirname(output)
    if out_dir:
        os.makedirs(out_dir, exist_ok=True)
    write_safetensors(tensors, metadata, output)
    log(f"{source}: layout {chosen}{' (detected)' if layout == 'auto' else ''}, sha256 {digest[:16]}…")
    log(f"mapping: {mapping}")
    reasons = collections.OrderedDict()
    for k, why in dropped:
        reasons.setdefault(why, []).append(k)
    for why, keys in reasons.items():
        shown = ", ".join(keys[:4]) + (f", … ({len(keys)} in all)" if len(keys) > 4 else "")
        log(f"dropped {len(keys)}: {shown} — {why}")
    log(f"wrote {len(tensors)} tensors to {output}")
    return tensors, metadata


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoint", help="a .pth / .pth.tar / model.pkl written by torch.save")
    p.add_argument("output", help="the .safetensors file to write")
    p.add_argument("--layout", choices=["auto", "torchvision", "moco-v2", "domainbed"], default="auto")
    args = p.parse_args(argv)
    try:
        convert(args.checkpoint, args.output, args.layout)
    except CheckpointError as e:
        print(f"convert_checkpoint: error: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        print(f"convert_checkpoint: error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
