#!/usr/bin/env python3
"""Tests of scripts/convert_checkpoint.py (stdlib unittest + numpy; torch is not needed).

    python3 scripts/test_convert_checkpoint.py        # run by scripts/test.sh in .venv-test

The fixtures (Tests/NNTests/Fixtures/checkpoints, made by scripts/make_checkpoint_fixture.py with torch)
are converted again and must give the committed converted files byte for byte; the Swift test
Tests/NNTests/CheckpointConversionTests.swift loads those and reproduces torch's logits. Hostile
pickles must be refused without running anything.
"""
import io
import json
import os
import pickle
import struct
import subprocess
import sys
import tempfile
import unittest
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import convert_checkpoint as cc  # noqa: E402

FIXTURES = os.path.normpath(os.path.join(HERE, "..", "Tests", "NNTests", "Fixtures", "checkpoints"))
CHECKPOINTS = {
    "resnet18_torchvision.pth": "torchvision",
    "resnet50_torchvision_legacy.pth": "torchvision",
    "resnet50_moco_v2.pth.tar": "moco-v2",
    "resnet18_domainbed_model.pkl": "domainbed",
}


def read_safetensors(path):
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
    return header


class Marker:
    """Pickles to a call of `fn(arg)` on load: what a hostile checkpoint does."""

    def __init__(self, fn, arg):
        self.fn, self.arg = fn, arg

    def __reduce__(self):
        return (self.fn, (self.arg,))


class ConversionTests(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.addCleanup(self.tmp.cleanup)

    def convert(self, name, layout="auto"):
        out = os.path.join(self.tmp.name, name.split(".")[0] + ".safetensors")
        lines = []
        cc.convert(os.path.join(FIXTURES, name), out, layout, log=lines.append)
        return out, lines

    def test_every_layout_reproduces_the_committed_conversion(self):
        for name, layout in CHECKPOINTS.items():
            with self.subTest(name=name):
                out, _ = self.convert(name)
                committed = os.path.join(FIXTURES, "converted", name.split(".")[0] + ".safetensors")
                with open(out, "rb") as a, open(committed, "rb") as b:
                    self.assertEqual(a.read(), b.read(), f"{name}: conversion differs from the committed file")
                meta = read_safetensors(out)["__metadata__"]
                self.assertEqual(meta["layout"], layout)
                self.assertEqual(meta["source"], name)
                self.assertEqual(meta["source_sha256"], cc.sha256(os.path.join(FIXTURES, name)))
                self.assertEqual(meta["format"], cc.FORMAT)

    def test_names_are_torchvision_names(self):
        for name in CHECKPOINTS:
            with self.subTest(name=name):
                out, _ = self.convert(name)
                keys = set(read_safetensors(out)) - {"__metadata__"}
                self.assertIn("conv1.weight", keys)
                self.assertIn("layer4.1.bn2.running_var" if "resnet18" in name else "layer4.2.bn3.running_var", keys)
                self.assertFalse(any(k.startswith(("module.", "featurizer.", "network.", "classifier.")) for k in keys))
                if "moco" in name:
                    self.assertFalse(any(k.startswith("fc.") for k in keys), "the MoCo projection head must be dropped")
                else:
                    self.assertIn("fc.weight", keys)

    def test_moco_says_what_it_dropped(self):
        out, lines = self.convert("resnet50_moco_v2.pth.tar")
        dropped = json.loads(read_safetensors(out)["__metadata__"]["dropped"])
        self.assertEqual(sorted(dropped), sorted(["module.encoder_q.fc.0.weight", "module.encoder_q.fc.0.bias",
                                                  "module.encoder_q.fc.2.weight", "module.encoder_q.fc.2.bias",
                                                  "module.queue", "module.queue_ptr"]))
        self.assertTrue(any("projection head" in line for line in lines), lines)

    def test_domainbed_duplicates_are_checked_and_dropped(self):
        out, _ = self.convert("resnet18_domainbed_model.pkl")
        dropped = json.loads(read_safetensors(out)["__metadata__"]["dropped"])
        self.assertIn("network.1.weight", dropped)
        self.assertTrue(all(k.startswith(("network.0.network.", "network.1.")) for k in dropped))
        # A DomainBed file whose two copies disagree is refused.
        obj = cc.load_checkpoint(os.path.join(FIXTURES, "resnet18_domainbed_model.pkl"))
        obj["model_dict"]["network.1.bias"] = obj["model_dict"]["network.1.bias"] + 1
        with self.assertRaisesRegex(cc.CheckpointError, "network.1.bias.*differs"):
            cc.map_state_dict(obj, "domainbed")

    def test_legacy_and_zip_formats_read_the_same_numbers(self):
        legacy = cc.load_checkpoint(os.path.join(FIXTURES, "resnet50_torchvision_legacy.pth"))["state_dict"]
        self.assertEqual(legacy["conv1.weight"].dtype.str, "<f4")
        self.assertEqual(legacy["bn1.num_batches_tracked"].dtype.str, "<i8")
        self.assertEqual(int(legacy["bn1.num_batches_tracked"]), 100)
        zipped = cc.load_checkpoint(os.path.join(FIXTURES, "resnet18_torchvision.pth"))
        self.assertEqual(list(zipped["layer1.0.conv1.weight"].shape), [4, 4, 3, 3])

    def test_wrong_layout_and_non_checkpoints_are_clear_errors(self):
        with self.assertRaisesRegex(cc.CheckpointError, "no 'model_dict'"):
            self.convert("resnet18_torchvision.pth", layout="domainbed")
        text = os.path.join(self.tmp.name, "notes.txt")
        with open(text, "w") as f:
            f.write("not a checkpoint")
        with self.assertRaisesRegex(cc.CheckpointError, "could not be read|not a PyTorch checkpoint"):
            cc.load_checkpoint(text)
        with self.assertRaisesRegex(cc.CheckpointError, "no such file"):
            cc.convert(os.path.join(self.tmp.name, "missing.pth"), os.path.join(self.tmp.name, "x.safetensors"))

    def test_command_line_exit_codes(self):
        out = os.path.join(self.tmp.name, "cli.safetensors")
        ok = subprocess.run([sys.executable, os.path.join(HERE, "convert_checkpoint.py"),
                             os.path.join(FIXTURES, "resnet18_torchvision.pth"), out], capture_output=True, text=True)
        self.assertEqual(ok.returncode, 0, ok.stderr)
        bad = subprocess.run([sys.executable, os.path.join(HERE, "convert_checkpoint.py"),
                              os.path.join(self.tmp.name, "missing.pth"), out], capture_output=True, text=True)
        self.assertEqual(bad.returncode, 2)
        self.assertIn("error: no such file", bad.stderr)


class HostilePickleTests(unittest.TestCase):
    """A pickle whose reduce would run code is refused before anything is called."""

    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.addCleanup(self.tmp.cleanup)
        self.marker = os.path.join(self.tmp.name, "pwned")

    def payloads(self):
        return [Marker(os.system, f"touch {self.marker}"),
                Marker(eval, f"open({self.marker!r}, 'w').write('x')"),
                Marker(subprocess.call, ["touch", self.marker])]

    def assertRefused(self, path, global_name):
        with self.assertRaises(cc.CheckpointError) as ctx:
            cc.convert(path, os.path.join(self.tmp.name, "out.safetensors"))
        self.assertIn(f"refusing to load global '{global_name}'", str(ctx.exception))
        self.assertIn("Nothing was executed", str(ctx.exception))
        self.assertFalse(os.path.exists(self.marker), "the hostile pickle ran code")
        self.assertFalse(os.path.exists(os.path.join(self.tmp.name, "out.safetensors")))

    def test_plain_pickle_in_legacy_position(self):
        # torch's legacy format starts with pickles; a file that is just a hostile pickle.
        names = ["posix.system", "builtins.eval", "subprocess.call"]
        for payload, name in zip(self.payloads(), names):
            with self.subTest(name=name):
                path = os.path.join(self.tmp.name, "evil.pth")
                with open(path, "wb") as f:
                    pickle.dump({"state_dict": payload}, f, protocol=2)
                self.assertRefused(path, name)

    def test_legacy_checkpoint_with_hostile_main_pickle(self):
        path = os.path.join(self.tmp.name, "evil_legacy.pth")
        with open(path, "wb") as f:
            for header in (cc._LEGACY_MAGIC, 1001, {"protocol_version": 1001, "little_endian": True}):
                pickle.dump(header, f, protocol=2)
            pickle.dump({"state_dict": self.payloads()[0]}, f, protocol=2)
        self.assertRefused(path, "posix.system")

    def test_zip_checkpoint_with_hostile_data_pkl(self):
        path = os.path.join(self.tmp.name, "evil_zip.pth")
        with zipfile.ZipFile(path, "w") as z:
            z.writestr("archive/data.pkl", pickle.dumps(collections_ordered({"fc.weight": self.payloads()[0]}), protocol=2))
            z.writestr("archive/version", "3\n")
        self.assertRefused(path, "posix.system")

    def test_hostile_global_inside_a_real_checkpoint(self):
        # Append a hostile reduce inside a valid zip checkpoint's data.pkl: the real tensors load, the
        # extra global is refused.
        src = os.path.join(FIXTURES, "resnet18_torchvision.pth")
        with zipfile.ZipFile(src) as z:
            entries = {n: z.read(n) for n in z.namelist()}
        pkl = next(n for n in entries if n.endswith("data.pkl"))
        evil = pickle.dumps(self.payloads()[0], protocol=2)
        # Replace the STOP of data.pkl's top object with: push payload, SETITEM under key "x", STOP.
        body = entries[pkl]
        self.assertEqual(body[-1:], b".")
        injected = body[:-1] + pickle.dumps("x", protocol=2)[2:-1] + evil[2:-1] + b"s."
        entries[pkl] = injected
        path = os.path.join(self.tmp.name, "evil_real.pth")
        with zipfile.ZipFile(path, "w") as z:
            for n, data in entries.items():
                z.writestr(n, data)
        self.assertRefused(path, "posix.system")


def collections_ordered(d):
    import collections
    return collections.OrderedDict(d)


if __name__ == "__main__":
    unittest.main(verbosity=1)
