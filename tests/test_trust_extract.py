"""Issue 22, extraction runs: one test per fault, each failing on the code before its fix.

The rows of ``docs/faults.rst`` ("Extraction runs") name these tests.
"""

import os
import signal
import subprocess
import sys
import time
import urllib.error
from pathlib import Path

import h5py
import pytest
from _videos import make_tree

from mkl_tp.extraction import run as extraction_run
from mkl_tp.extraction.run import extract_features

ROOT = Path(__file__).resolve().parents[1]
SMALL = dict(arch="resnet18", weights="random", short_side=40, crop=32, batch_size=8, workers=0)


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    root = tmp_path_factory.mktemp("videos")
    make_tree(root)
    return root


def _refuse_to_build(*args, **kwargs):
    raise AssertionError("the networks were built")


def test_a_no_op_resume_does_not_build_the_network(tree, tmp_path, monkeypatch):
    out = str(tmp_path / "cache")
    listing = tmp_path / "two.txt"
    listing.write_text("walk/v_walk_g02_c01\njump/single\n")
    first = extract_features(
        tree, out, streams=("rgb",), video_list=listing, dtype="float32", **SMALL
    )
    assert first.done == {"rgb": 2}
    monkeypatch.setattr(extraction_run, "_build_nets", _refuse_to_build)
    again = extract_features(
        tree, out, streams=("rgb",), video_list=listing, dtype="float32", **SMALL
    )
    assert (again.done, again.skipped, again.failed) == ({"rgb": 0}, {"rgb": 2}, {"rgb": 0})
    # A run the output refuses (another crop) is refused before the networks too.
    with pytest.raises(ValueError, match=r"written by a different extraction \(crop=32"):
        extract_features(
            tree,
            out,
            streams=("rgb",),
            video_list=listing,
            dtype="float32",
            **dict(SMALL, crop=24),
        )
    # Other weights are not a no-op: the networks are built (and the file refuses them).
    names = [extraction_run._weights_name("resnet101", w, 0) for w in ("imagenet", "IMAGENET1K_V1")]
    assert names == ["ResNet101_Weights.IMAGENET1K_V2", "ResNet101_Weights.IMAGENET1K_V1"]
    with pytest.raises(AssertionError, match="networks were built"):
        extract_features(
            tree, out, streams=("rgb",), video_list=listing, dtype="float32", seed=1, **SMALL
        )


def test_missing_imagenet_weights_are_one_line_before_any_network(tree, tmp_path, monkeypatch):
    import torch

    from mkl_tp.extraction import backbone

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))

    def offline(url, *args, **kwargs):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    # Before, the RGB network was built, and only then were the flow weights looked for.
    monkeypatch.setattr(backbone, "build_backbone", _refuse_to_build)
    cached = tmp_path / "torch" / "hub" / "checkpoints" / "resnet18-f37072fd.pth"
    with pytest.raises(backbone.WeightsError) as caught:
        extract_features(
            tree,
            str(tmp_path / "cache"),
            streams="both",
            **dict(SMALL, flow_weights="IMAGENET1K_V1"),
        )
    message = str(caught.value)
    assert "\n" not in message
    assert str(cached) in message and "--weights PATH" in message
    assert "Temporary failure in name resolution" in message
    assert not list((tmp_path).glob("cache*"))
    with pytest.raises(backbone.WeightsError, match="not in torchvision's cache"):
        backbone.check_weights("resnet18", "IMAGENET1K_V1")
    # Weights put where the message says are used without the network.
    monkeypatch.undo()
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    cached.parent.mkdir(parents=True, exist_ok=True)
    torch.save(backbone._random_state_dict("resnet18", 0), cached)
    net = backbone.build_backbone("resnet18", "IMAGENET1K_V1")
    assert net.weights == "ResNet18_Weights.IMAGENET1K_V1" and net.feature_dim == 512


def _extracted_like(path, **attrs):
    """Give a bring-your-own cache the root attributes an extraction writes."""
    info = dict(
        stream="rgb",
        arch="resnet101",
        weights="ResNet101_Weights.IMAGENET1K_V2",
        weights_digest="ab" * 32,
        input_channels=3,
        short_side=128,
        crop=112,
        normalisation_mean=[0.485, 0.456, 0.406],
        normalisation_std=[0.229, 0.224, 0.225],
        mkl_tp_version="0.1.0",
    )
    info.update(attrs)
    with h5py.File(path, "a") as h5:
        for key in list(h5.attrs):
            del h5.attrs[key]
        h5.attrs.update({k: v for k, v in info.items() if v is not None})
    return path


@pytest.mark.parametrize(
    "attrs, fragment",
    [
        (dict(crop=96), "crop=96 in the file, 112 in the model's"),
        (dict(arch="resnet50"), "arch='resnet50' in the file, 'resnet101' in the model's"),
        (dict(weights_digest="cd" * 32), "weights_digest='cdcd"),
        (dict(sample_fps=5.0), "sample_fps=5.0 in the file, None in the model's"),
        (dict(stream="flow"), "stream='flow' in the file, 'rgb' in the model's"),
    ],
)
def test_predict_refuses_features_extracted_otherwise(tmp_path, capsys, attrs, fragment):
    from _caches import make_cache, write_ucf_split

    from mkl_tp import fit, predict

    train, ids = make_cache(tmp_path, stream="rgb", d=4)
    _extracted_like(train)
    splits = write_ucf_split(tmp_path / "splits", ids)
    argv = ["--features", train, "--splits", splits, "--levels", "1", "--quiet"]
    assert fit.main([str(a) for a in argv + ["--out", tmp_path / "run"]]) == 0
    model = tmp_path / "run" / "model.skops"
    assert predict.load_model(model).feature_attrs_[None]["crop"] == 112  # round-trips
    other = tmp_path / "other" / "toy_rgb.h5"
    other.parent.mkdir()
    other.write_bytes(train.read_bytes())
    _extracted_like(other, **attrs)
    capsys.readouterr()
    assert predict.main([str(model), "--features", str(other), "--quiet"]) == 1
    errors = [line for line in capsys.readouterr().err.splitlines() if "error" in line]
    assert len(errors) == 1
    assert str(other) in errors[0] and fragment in errors[0]
    assert "--allow-extractor-mismatch" in errors[0]
    code = predict.main(
        [str(model), "--features", str(other), "--quiet", "--allow-extractor-mismatch"]
    )
    warned = [line for line in capsys.readouterr().err.splitlines() if "warning" in line]
    assert code == 0 and len(warned) == 1
    assert fragment in warned[0] and "predicting anyway" in warned[0]
    # The training features themselves, or a copy with another weights path, are accepted.
    _extracted_like(other, weights="/elsewhere/resnet101.pth")
    assert predict.main([str(model), "--features", str(other), "--quiet"]) == 0


def _descendants(pid):
    """Processes below ``pid`` (psutil if installed, else /proc)."""
    try:
        import psutil
    except ImportError:
        children, frontier = [], [pid]
        while frontier:
            parent = frontier.pop()
            for entry in os.listdir("/proc"):
                if entry.isdigit():
                    try:
                        with open(f"/proc/{entry}/stat", "rb") as handle:
                            ppid = int(handle.read().rsplit(b")", 1)[1].split()[1])
                    except (OSError, ValueError, IndexError):
                        continue
                    if ppid == parent:
                        children.append(int(entry))
                        frontier.append(int(entry))
        return children
    return [p.pid for p in psutil.Process(pid).children(recursive=True)]


def _running(pid):
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            return handle.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except OSError:
        return False


@pytest.mark.slow
@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="reads /proc")
def test_workers_end_when_extract_is_killed(tmp_path):
    from _videos import write_video

    src = tmp_path / "videos"
    for k in range(6):
        write_video(src / f"c/v{k}.avi", 60, size=(32, 48))
    args = ["--stream", "both", "--arch", "resnet18", "--weights", "random", "--short-side", "40"]
    args += ["--crop", "32", "--batch-size", "8", "--workers", "1", "-v"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "mkl_tp.extract", str(src), "--out", str(tmp_path / "k"), *args],
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    children = []
    try:
        for line in proc.stderr:
            if "saved" in line:  # the forkserver, the resource tracker and a worker run
                break
        children = _descendants(proc.pid)
        assert len(children) >= 2
        os.kill(proc.pid, signal.SIGKILL)  # the main process only, as kill -9 PID does
        proc.wait()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(map(_running, children)):
            time.sleep(0.1)
        left = [pid for pid in children if _running(pid)]
        assert not left, f"still alive 10 s after kill -9 of extract: {left}"
    finally:
        for pid in children:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        proc.kill()
        proc.wait()


def test_a_frame_folder_of_mixed_sizes_is_a_failure(tmp_path):
    from _videos import write_frame_folder

    from mkl_tp import store
    from mkl_tp.extraction import VideoError, VideoFrames

    root = tmp_path / "videos"
    folder = write_frame_folder(root / "frames" / "mixed", 4, size=(40, 56))
    write_frame_folder(tmp_path / "other", 3, size=(48, 64))
    os.replace(tmp_path / "other" / "img_3.png", os.path.join(folder, "img_3.png"))
    write_frame_folder(root / "frames" / "even", 3, size=(40, 56))
    with pytest.raises(VideoError) as caught:
        list(VideoFrames(folder))
    message = str(caught.value)
    assert folder in message and "mixed sizes" in message
    assert "img_1.png is 56x40" in message and "img_3.png is 64x48" in message
    summary = extract_features(root, str(tmp_path / "c"), streams=("rgb",), **SMALL)
    assert summary.done == {"rgb": 1} and list(summary.failures) == ["frames/mixed"]
    assert "mixed sizes" in store.failed_videos(tmp_path / "c_rgb.h5")["frames/mixed"]


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_a_fifo_in_a_frame_folder_is_skipped_not_opened(tmp_path, caplog):
    import threading

    from _videos import write_frame_folder

    from mkl_tp.extraction import VideoFrames

    folder = write_frame_folder(tmp_path / "frames", 3, size=(40, 56))
    fifo = os.path.join(folder, "img_4.png")
    os.mkfifo(fifo)
    os.mkdir(os.path.join(folder, "img_5.jpg"))
    frames = []
    reader = threading.Thread(target=lambda: frames.extend(VideoFrames(folder)), daemon=True)
    with caplog.at_level("WARNING", logger="mkl_tp.extraction.frames"):
        reader.start()
        reader.join(10)
    if reader.is_alive():  # the old code blocks opening the FIFO: let it see an end
        fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
        os.close(fd)
        reader.join(10)
        pytest.fail(f"reading {folder} opened the FIFO img_4.png and waited")
    assert len(frames) == 3
    skipped = [r.getMessage() for r in caplog.records if "not a regular file" in r.getMessage()]
    assert len(skipped) == 2 and "img_4.png" in skipped[0] and folder in skipped[0]


def test_writing_report_json_onto_a_full_disk_names_the_file(tmp_path, monkeypatch):
    import errno
    import json

    from mkl_tp.experiment import report

    path = tmp_path / "report.json"
    report.write_json(path, {"a": 1})

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(report.os, "replace", full)
    with pytest.raises(OSError) as caught:
        report.write_json(path, {"a": 2})
    assert str(caught.value) == f"cannot write {path}: No space left on device"
    assert caught.value.errno == errno.ENOSPC
    monkeypatch.undo()
    assert json.loads(path.read_text()) == {"a": 1} and os.listdir(tmp_path) == ["report.json"]


def test_resnet_trunk_offline_says_where_the_weights_go(tmp_path, monkeypatch):
    import torch

    from mkl_tp.deep.finetune import trunk
    from mkl_tp.extraction.backbone import WeightsError

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))

    def offline(url, *args, **kwargs):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    with pytest.raises(WeightsError) as caught:
        trunk("resnet18", weights="IMAGENET1K_V1")
    message = str(caught.value)
    assert "\n" not in message and "resnet18-f37072fd.pth" in message
    assert "Temporary failure in name resolution" in message
