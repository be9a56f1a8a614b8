"""Tests for mkl_tp.extract: the command line, end to end on small real videos (the library
behind it: test_extraction.py, test_store.py)."""

import logging
import os
import resource
import signal
import subprocess
import sys
import urllib.error

import numpy as np
import pytest
import torch
import torchvision
from _videos import make_tree, write_video

from mkl_tp import store
from mkl_tp.extract import main, output_path, shard_of
from mkl_tp.extraction import backbone
from mkl_tp.extraction.inputs import NetworkInputs

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SMALL = [
    "--arch",
    "resnet18",
    "--weights",
    "random",
    "--short-side",
    "40",
    "--crop",
    "32",
    "--batch-size",
    "8",
    "--workers",
    "0",
    "--quiet",
]


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    root = tmp_path_factory.mktemp("videos")
    good, bad = make_tree(root)
    return root, good, bad


@pytest.fixture(scope="module")
def both_run(tree, tmp_path_factory):
    """One run of both streams over the whole tree, in float32."""
    root, _, _ = tree
    out = tmp_path_factory.mktemp("features") / "ucf"
    code = main([str(root), "--out", str(out), "--stream", "both", "--dtype", "float32"] + SMALL)
    return out, code


def _run(capsys, *args):
    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


# -- a whole run ----------------------------------------------------------------------
def test_both_streams_end_to_end(tree, both_run):
    root, good, bad = tree
    out, code = both_run
    assert code == 1  # the broken videos failed
    for stream in ("rgb", "flow"):
        path = output_path(str(out), stream)
        assert path.endswith(f"ucf_{stream}.h5")
        ids, arrays = store.load_features(path)
        assert ids == sorted(good)
        for vid, array in zip(ids, arrays):
            assert array.shape == (good[vid], 512) and array.dtype == np.float32
        info = store.read_info(path)
        assert (
            info["stream"] == stream
            and info["arch"] == "resnet18"
            and info["weights"] == "random(seed=0)"
        )
        expected_net = backbone.build_backbone(
            "resnet18", "random", in_channels=3 if stream == "rgb" else 20
        )
        assert info["weights_digest"] == expected_net.digest
        assert info["feature_dim"] == 512 and info["dtype"] == "float32"
        assert (
            info["short_side"] == 40
            and info["crop"] == 32
            and info["input_channels"] == expected_net.in_channels
        )
        assert ("flow_method" in info) == (stream == "flow")
        attrs = store.video_attrs(path, "walk/v_walk_g01_c01")
        assert attrs["n_frames"] == 12 and attrs["fps"] == 25.0 and attrs["complete"]
        assert attrs["source"] == os.path.join(root, "walk", "v_walk_g01_c01.mp4")
        assert attrs["stream"] == stream and attrs["backbone"] == "resnet18"
        assert np.isnan(store.video_attrs(path, "frames/run_1")["fps"])
        failed = store.failed_videos(path)
        assert sorted(failed) == sorted(bad)
        for vid, name in bad.items():
            assert name in failed[vid]
    assert store.read_info(output_path(str(out), "flow"))["flow_method"] == "dis"


def test_summary_resume_and_exit_codes(tree, tmp_path, capsys):
    root, good, bad = tree
    out = tmp_path / "feats"
    code, stdout, stderr = _run(capsys, root, "--out", out, "--stream", "rgb", *SMALL)
    assert code == 1
    assert f"rgb: {len(good)} done, 0 skipped, {len(bad)} failed -> {out}_rgb.h5" in stdout
    assert "failed: broken/garbage: cannot open video" in stderr and "garbage.avi" in stderr
    before = store.load_features(f"{out}_rgb.h5")[1]
    code, stdout, _ = _run(capsys, root, "--out", out, "--stream", "rgb", *SMALL)
    assert code == 1 and f"rgb: 0 done, {len(good)} skipped, {len(bad)} failed" in stdout
    for a, b in zip(before, store.load_features(f"{out}_rgb.h5")[1]):
        np.testing.assert_array_equal(a, b)
    listing = tmp_path / "good.txt"
    listing.write_text("\n".join(good) + "\n")
    code, stdout, _ = _run(
        capsys, root, "--out", out, "--stream", "both", "--list", listing, *SMALL
    )
    assert code == 0  # only the flow stream had work left
    assert f"rgb: 0 done, {len(good)} skipped, 0 failed" in stdout
    assert f"flow: {len(good)} done, 0 skipped, 0 failed" in stdout


def test_float16_is_the_default_storage(tree, tmp_path, capsys):
    root, good, _ = tree
    listing = tmp_path / "one.txt"
    listing.write_text("jump/single.mp4\n")
    code, _, _ = _run(
        capsys, root, "--out", tmp_path / "x", "--stream", "rgb", "--list", listing, *SMALL
    )
    assert code == 0
    ids, (array,) = store.load_features(tmp_path / "x_rgb.h5")
    assert ids == ["jump/single"] and array.dtype == np.float16 and array.shape == (1, 512)


def _direct(net, inputs):
    """Features of uint8 inputs through a plain torchvision ResNet with the same weights."""
    reference = torchvision.models.resnet18(weights=None)
    reference.conv1 = torch.nn.Conv2d(net.in_channels, 64, 7, 2, 3, bias=False)
    reference.fc = torch.nn.Identity()
    reference.load_state_dict(net.model.state_dict())
    x = torch.from_numpy(np.stack(inputs)).float() / 255
    if net.in_channels == 3:
        x = torchvision.transforms.Normalize(backbone.RGB_MEAN, backbone.RGB_STD)(x)
    else:
        x = (x - backbone.FLOW_MEAN) / backbone.FLOW_STD
    with torch.no_grad():
        return reference.eval()(x).numpy()


@pytest.mark.parametrize("stream", ["rgb", "flow"])
def test_features_equal_a_direct_forward_of_the_same_frames(tree, both_run, stream):
    root, _, _ = tree
    out, _ = both_run
    video = os.path.join(root, "jump", "v_jump_g01_c01.mkv")
    frames = [a for s, a in NetworkInputs(video, (stream,), short_side=40, crop=32) if s == stream]
    net = backbone.build_backbone("resnet18", "random", in_channels=3 if stream == "rgb" else 20)
    _, (cached,) = store.load_features(output_path(str(out), stream), ["jump/v_jump_g01_c01"])
    assert cached.shape == (len(frames), 512) == (14, 512)
    np.testing.assert_allclose(cached, _direct(net, frames), rtol=1e-4, atol=1e-5)


def test_worker_processes_give_the_same_features(tree, both_run, tmp_path, capsys):
    root, _, _ = tree
    out, _ = both_run
    listing = tmp_path / "some.txt"
    listing.write_text("walk/v_walk_g02_c01\nframes/run_1\njump/single\nbroken/garbage\n")
    args = [a if a != "0" else "2" for a in SMALL]  # --workers 2
    code, _, _ = _run(
        capsys,
        root,
        "--out",
        tmp_path / "w",
        "--stream",
        "both",
        "--dtype",
        "float32",
        "--list",
        listing,
        *args,
    )
    assert code == 1
    for stream in ("rgb", "flow"):
        ids, arrays = store.load_features(tmp_path / f"w_{stream}.h5")
        assert ids == ["frames/run_1", "jump/single", "walk/v_walk_g02_c01"]
        for vid, array in zip(ids, arrays):
            np.testing.assert_array_equal(
                array, store.load_features(output_path(str(out), stream), [vid])[1][0]
            )
        assert list(store.failed_videos(tmp_path / f"w_{stream}.h5")) == ["broken/garbage"]


# -- shards ---------------------------------------------------------------------------
@pytest.mark.slow
def test_two_shards_merged_equal_one_run(tree, both_run, tmp_path, capsys):
    root, good, bad = tree
    out, _ = both_run
    assert {shard_of(v, 2) for v in good} == {0, 1}  # both shards have work
    for index in range(2):
        code, _, _ = _run(
            capsys,
            root,
            "--out",
            tmp_path / "ucf",
            "--stream",
            "rgb",
            "--dtype",
            "float32",
            "--shard",
            f"{index}/2",
            *SMALL,
        )
        assert code in (0, 1)
        shard_ids = store.list_videos(tmp_path / f"ucf_rgb.shard-{index}-of-2.h5")
        assert shard_ids == sorted(v for v in good if shard_of(v, 2) == index)
    shards = [tmp_path / f"ucf_rgb.shard-{i}-of-2.h5" for i in range(2)]
    for copy in ([], ["--copy"]):
        merged = tmp_path / "merged" / f"ucf_rgb{len(copy)}.h5"
        code, stdout, _ = _run(capsys, "merge", *shards, "--out", merged, *copy)
        assert code == 0 and f"merged 2 shards: {len(good)} videos, {len(bad)} failed" in stdout
        ids, arrays = store.load_features(merged)
        ref_ids, ref_arrays = store.load_features(output_path(str(out), "rgb"))
        assert ids == ref_ids
        for a, b in zip(arrays, ref_arrays):
            np.testing.assert_array_equal(a, b)
        assert sorted(store.failed_videos(merged)) == sorted(bad)
    code, _, stderr = _run(capsys, "merge", shards[0], "--out", tmp_path / "m.h5")
    assert code == 2 and "missing shards 1/2" in stderr


@pytest.mark.parametrize(
    "env, index",
    [
        ({"RANK": "1", "WORLD_SIZE": "3"}, 1),
        (
            {
                "SLURM_ARRAY_TASK_ID": "3",
                "SLURM_ARRAY_TASK_COUNT": "3",
                "SLURM_ARRAY_TASK_MIN": "1",
            },
            2,
        ),
    ],
)
def test_shard_auto_reads_torchrun_or_slurm(tree, tmp_path, capsys, monkeypatch, env, index):
    root, good, _ = tree
    for name in (
        "RANK",
        "WORLD_SIZE",
        "SLURM_ARRAY_TASK_ID",
        "SLURM_ARRAY_TASK_COUNT",
        "SLURM_ARRAY_TASK_MIN",
    ):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    listing = tmp_path / "good.txt"
    listing.write_text("\n".join(good))
    code, _, _ = _run(
        capsys,
        root,
        "--out",
        tmp_path / "a",
        "--stream",
        "rgb",
        "--shard",
        "auto",
        "--list",
        listing,
        *SMALL,
    )
    assert code == 0
    path = tmp_path / f"a_rgb.shard-{index}-of-3.h5"
    assert store.read_info(path)["shard"] == f"{index}/3"
    assert store.list_videos(path) == sorted(v for v in good if shard_of(v, 3) == index)


def test_shard_auto_without_a_scheduler(tree, tmp_path, capsys, monkeypatch):
    for name in ("RANK", "WORLD_SIZE", "SLURM_ARRAY_TASK_ID", "SLURM_ARRAY_TASK_COUNT"):
        monkeypatch.delenv(name, raising=False)
    code, _, stderr = _run(capsys, tree[0], "--out", tmp_path / "a", "--shard", "auto", *SMALL)
    assert code == 2
    _one_line_error(stderr, "--shard auto needs RANK/WORLD_SIZE")


# -- errors ---------------------------------------------------------------------------
def _one_line_error(stderr, *fragments):
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("python -m mkl_tp.extract: error: "), stderr
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


def test_listed_videos_that_do_not_exist_are_failures(tree, tmp_path, capsys):
    root, _, _ = tree
    listing = tmp_path / "split.txt"
    listing.write_text("jump/single.mp4 3\nwalk/v_walk_g99_c01.avi 1\n")
    code, stdout, _ = _run(
        capsys, root, "--out", tmp_path / "s", "--stream", "rgb", "--list", listing, *SMALL
    )
    assert code == 1 and "rgb: 1 done, 0 skipped, 1 failed" in stdout
    message = store.failed_videos(tmp_path / "s_rgb.h5")["walk/v_walk_g99_c01"]
    assert "listed in" in message and "split.txt" in message and "not found under" in message
    listing.write_text("nothing/here.avi\n")
    code, _, stderr = _run(capsys, root, "--out", tmp_path / "s", "--list", listing, *SMALL)
    assert code == 2
    _one_line_error(stderr, "none of the videos listed in", "split.txt")


@pytest.mark.parametrize(
    "extra, fragments",
    [
        (["--crop", "300"], ["--crop 300 is larger than --short-side 40"]),
        (["--shard", "2/2"], ["--shard 2/2: need 0 <= I < N"]),
        (["--shard", "half"], ["--shard 'half' is not I/N"]),
        (["--device", "tpu9"], ["unknown device 'tpu9'"]),
        (["--weights", "nowhere.pth"], ["weights file nowhere.pth does not exist"]),
        (["--batch-size", "0"], ["--batch-size must be at least 1"]),
        (["--fps", "0"], ["--fps must be a positive number of frames per second, got 0.0"]),
        (["--fps", "inf"], ["--fps must be a positive number"]),
        (["--stride", "0"], ["--stride must be at least 1, got 0"]),
        (["--frames", "0"], ["--frames must be at least 1, got 0"]),
        (["--arch", "resnet9000"], ["unknown arch 'resnet9000'", "vgg19"]),
        (["--arch", "vit_b_16"], ["vit_b_16 needs inputs of at least 224x224", "32x32"]),
    ],
)
def test_usage_errors_are_one_line(tree, tmp_path, capsys, extra, fragments):
    root, _, _ = tree
    code, _, stderr = _run(capsys, root, "--out", tmp_path / "e", *SMALL, *extra)
    assert code == 2
    _one_line_error(stderr, *fragments)
    assert not list(tmp_path.iterdir())


def test_bad_source_and_outputs(tree, tmp_path, capsys):
    root, _, _ = tree
    code, _, stderr = _run(capsys, tmp_path / "nowhere", "--out", tmp_path / "e", *SMALL)
    assert code == 2
    _one_line_error(stderr, "source folder", "nowhere does not exist")
    code, _, stderr = _run(capsys, root, "--out", tmp_path / "e.h5", *SMALL)
    assert code == 2
    _one_line_error(stderr, "two streams write two files: give --out a NAME")
    blocker = tmp_path / "file"
    blocker.write_text("")
    code, _, stderr = _run(capsys, root, "--out", blocker / "e", "--stream", "rgb", *SMALL)
    assert code == 2
    _one_line_error(stderr, "cannot write", "file/e_rgb.h5")


def test_another_extractions_file_is_not_extended(tree, tmp_path, capsys):
    root, _, _ = tree
    listing = tmp_path / "one.txt"
    listing.write_text("jump/single\n")
    args = ["--out", tmp_path / "x", "--stream", "rgb", "--list", listing]
    assert _run(capsys, root, *args, *SMALL)[0] == 0
    small34 = [a if a != "resnet18" else "resnet34" for a in SMALL]
    code, _, stderr = _run(capsys, root, *args, *small34)
    assert code == 2
    _one_line_error(
        stderr, "x_rgb.h5 was written by a different extraction", "arch='resnet18' in the file"
    )


def test_imagenet_weights_offline(tree, tmp_path, capsys, monkeypatch):
    root, _, _ = tree
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty_torch_home"))

    def no_network(url, *args, **kwargs):
        raise urllib.error.URLError("Name or service not known")

    monkeypatch.setattr(torch.hub, "download_url_to_file", no_network)
    args = [a for a in SMALL if a not in ("--weights", "random")]
    code, _, stderr = _run(capsys, root, "--out", tmp_path / "i", *args)
    assert code == 2
    _one_line_error(
        stderr, "ImageNet weights for resnet18", "--weights PATH", "resnet18-f37072fd.pth"
    )


def test_help_reads_as_documentation(capsys):
    for argv, fragments in (
        (
            ["--help"],
            [
                "--stream {rgb,flow,both}",
                "--flow-method {dis,farneback,tvl1}",
                "--shard I/N",
                "exit status",
                "merge",
                "import",
                "(default: resnet101)",
                "--fps F",
                "--stride K",
                "--keep-partial",
                "--verify",
            ],
        ),
        (["merge", "--help"], ["--copy", "--partial", "external links"]),
        (["import", "--help"], [".npz", "--stream", "/failed"]),
    ):
        with pytest.raises(SystemExit) as exit_info:
            main(argv)
        assert exit_info.value.code == 0
        text = " ".join(capsys.readouterr().out.split())
        for fragment in fragments:
            assert fragment in text, fragment


# -- import ---------------------------------------------------------------------------
def test_import_arrays_with_bad_entries(tmp_path, capsys):
    src = tmp_path / "arrays"
    (src / "sub").mkdir(parents=True)
    rng = np.random.default_rng(0)
    good = {"a": rng.random((5, 8)), "sub/b": rng.random((3, 8)), "c": rng.random((2, 8))}
    np.save(src / "a.npy", good["a"])
    np.savez(src / "sub" / "b.npz", good["sub/b"])
    np.savez(src / "c.npz", features=good["c"], fps=np.array(30.0))
    np.save(src / "nan.npy", np.array([[1.0] * 7 + [np.nan]]))
    np.save(src / "flat.npy", np.ones(8))
    np.save(src / "wrong_d.npy", np.ones((4, 7)))
    np.savez(src / "two.npz", x=np.ones((2, 8)), y=np.ones((2, 8)))
    (src / "corrupt.npy").write_bytes(b"\x93NUMPY garbage")
    out = tmp_path / "feats_rgb.h5"
    code, stdout, stderr = _run(capsys, "import", src, "--out", out, "--quiet")
    assert code == 1 and "rgb: 3 done, 0 skipped, 5 failed" in stdout
    ids, arrays = store.load_features(out)
    assert ids == ["a", "c", "sub/b"]
    for vid, array in zip(ids, arrays):
        np.testing.assert_array_equal(array, good[vid].astype(np.float32))
    assert store.video_attrs(out, "c")["fps"] == 30.0
    info = store.read_info(out)
    assert info["stream"] == "rgb" and info["feature_dim"] == 8 and info["extractor"] == "import"
    failed = store.failed_videos(out)
    assert "video 'nan'" in failed["nan"] and "NaN" in failed["nan"]
    assert "video 'flat'" in failed["flat"] and "(T, d)" in failed["flat"]
    assert "video 'wrong_d'" in failed["wrong_d"] and "d=7" in failed["wrong_d"]
    assert (
        "two.npz" in failed["two"] and "expected one array or one named 'features'" in failed["two"]
    )
    assert "corrupt.npy" in failed["corrupt"] and "cannot read" in failed["corrupt"]
    assert "failed: video 'nan'" in stderr
    code, stdout, _ = _run(capsys, "import", src, "--out", out, "--quiet")
    assert code == 1 and "rgb: 0 done, 3 skipped, 5 failed" in stdout


def test_import_needs_a_stream_name(tmp_path, capsys):
    (tmp_path / "arrays").mkdir()
    np.save(tmp_path / "arrays" / "a.npy", np.ones((2, 3)))
    code, _, stderr = _run(capsys, "import", tmp_path / "arrays", "--out", tmp_path / "feats.h5")
    assert code == 2
    _one_line_error(stderr, "pass --stream")
    code, _, _ = _run(
        capsys,
        "import",
        tmp_path / "arrays",
        "--out",
        tmp_path / "feats",
        "--stream",
        "audio",
        "--quiet",
    )
    assert code == 0 and store.read_info(tmp_path / "feats_audio.h5")["stream"] == "audio"
    code, _, stderr = _run(capsys, "import", tmp_path / "nothing", "--out", tmp_path / "f_rgb.h5")
    assert code == 2
    _one_line_error(stderr, "nothing does not exist")


def test_a_bare_out_name_lands_in_features(tmp_path, monkeypatch, capsys):
    src = tmp_path / "arrays"
    src.mkdir()
    np.save(src / "a.npy", np.ones((3, 4)))
    monkeypatch.chdir(tmp_path)
    code, stdout, _ = _run(capsys, "import", "arrays", "--out", "ucf101", "--stream", "rgb")
    assert code == 0
    cache = tmp_path / "features" / "ucf101_rgb.h5"
    assert cache.is_file() and not (tmp_path / "ucf101_rgb.h5").exists()
    assert os.path.join("features", "ucf101_rgb.h5") in stdout
    assert store.list_videos(cache) == ["a"]
    # a bare FILE name too; a name with a folder part ("./", "sub/") is kept as given
    code, _, _ = _run(capsys, "import", "arrays", "--out", "other_rgb.h5", "--quiet")
    assert code == 0 and (tmp_path / "features" / "other_rgb.h5").is_file()
    code, _, _ = _run(capsys, "import", "arrays", "--out", "./here_rgb.h5", "--quiet")
    assert code == 0 and (tmp_path / "here_rgb.h5").is_file()
    code, _, _ = _run(capsys, "import", "arrays", "--out", "sub/x_rgb.h5", "--quiet")
    assert code == 0 and (tmp_path / "sub" / "x_rgb.h5").is_file()


def test_help_says_where_a_bare_out_goes(capsys):
    for args in ([], ["merge"], ["import"]):
        with pytest.raises(SystemExit):
            main([*args, "--help"])
        text = " ".join(capsys.readouterr().out.split())
        assert "./features/" in text and "current directory" in text, args


# -- interruptions --------------------------------------------------------------------
def _cli(*args, **kwargs):
    env = dict(os.environ, PYTHONPATH=ROOT)
    return subprocess.Popen(
        [sys.executable, "-m", "mkl_tp.extract", *map(str, args)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kwargs,
    )


@pytest.mark.slow
def test_sigkill_mid_run_then_resume(tmp_path, capsys):
    src = tmp_path / "videos"
    lengths = {f"c{k % 2}/v{k}": 12 + k for k in range(5)}
    for vid, n_frames in lengths.items():
        write_video(src / f"{vid}.avi", n_frames, size=(32, 48))
    args = [
        src,
        "--out",
        tmp_path / "k",
        "--stream",
        "both",
        "--dtype",
        "float32",
        *[a if a != "0" else "1" for a in SMALL],
        "-v",
    ]
    proc = _cli(*args, start_new_session=True)
    for line in proc.stderr:
        if "saved" in line:  # one video is committed and the next is in flight
            break
    os.killpg(proc.pid, signal.SIGKILL)  # the main process and its decoding worker
    proc.communicate()
    assert proc.returncode == -signal.SIGKILL
    saved = store.list_videos(tmp_path / "k_rgb.h5")  # readable right after the kill
    assert 1 <= len(saved) < len(lengths)
    before = store.load_features(tmp_path / "k_rgb.h5", saved)[1]
    code, stdout, _ = _run(capsys, *args[:-1])
    assert (
        code == 0
        and f"rgb: {len(lengths) - len(saved)} done, {len(saved)} skipped, 0 failed" in stdout
    )
    for stream in ("rgb", "flow"):
        ids, arrays = store.load_features(tmp_path / f"k_{stream}.h5")
        assert ids == sorted(lengths)
        assert [len(a) for a in arrays] == [lengths[v] for v in ids]
    for a, b in zip(before, store.load_features(tmp_path / "k_rgb.h5", saved)[1]):
        np.testing.assert_array_equal(a, b)


def test_sigterm_stops_cleanly_and_keeps_what_was_saved(tree, tmp_path, capsys, monkeypatch):
    root, good, _ = tree
    listing = tmp_path / "good.txt"
    listing.write_text("\n".join(good))
    real_write = store.FeatureWriter.write

    def write_then_terminated(self, *args, **kwargs):
        real_write(self, *args, **kwargs)
        os.kill(os.getpid(), signal.SIGTERM)  # what a scheduler sends before killing

    monkeypatch.setattr(store.FeatureWriter, "write", write_then_terminated)
    args = [root, "--out", tmp_path / "t", "--stream", "rgb", "--list", listing, *SMALL]
    code, _, stderr = _run(capsys, *args)
    assert code == 130
    assert "stopped; the 1 videos saved in this run are kept, run the same command again" in stderr
    assert store.list_videos(tmp_path / "t_rgb.h5") == list(good)[:1]  # videos go in list order
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # restored
    monkeypatch.undo()
    code, stdout, _ = _run(capsys, *args)
    assert code == 0 and f"rgb: {len(good) - 1} done, 1 skipped" in stdout


@pytest.mark.slow
def test_full_disk_mid_run_keeps_saved_videos(tmp_path, capsys):
    src = tmp_path / "videos"
    for k in range(6):
        write_video(src / f"v{k}.mp4", 30, size=(32, 48))
    args = [src, "--out", tmp_path / "f", "--stream", "rgb", "--dtype", "float32", *SMALL]

    def limit():  # writes past 150 kB fail with EFBIG, as on a full disk
        resource.setrlimit(resource.RLIMIT_FSIZE, (150_000, 150_000))

    proc = _cli(*args, preexec_fn=limit)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 1
    _one_line_error(stderr, "cannot write", "f_rgb.h5", "File too large")
    saved = store.list_videos(tmp_path / "f_rgb.h5")
    assert 1 <= len(saved) < 6
    code, stdout, _ = _run(capsys, *args)
    assert code == 0 and f"rgb: {6 - len(saved)} done, {len(saved)} skipped" in stdout
    assert len(store.list_videos(tmp_path / "f_rgb.h5")) == 6


# -- what a user meets ------------------------------------------------------------------
def test_truncated_and_garbage_weights_are_one_line(tree, tmp_path, capsys):
    root, _, _ = tree
    junk = tmp_path / "junk.pth"
    junk.write_bytes(np.random.default_rng(0).integers(0, 256, 3000, dtype=np.uint8).tobytes())
    args = [a for a in SMALL if a not in ("--weights", "random")]
    code, _, stderr = _run(capsys, root, "--out", tmp_path / "w", *args, "--weights", junk)
    assert code == 2
    _one_line_error(
        stderr,
        f"cannot load weights from {junk}: not a PyTorch checkpoint",
        "expected a state dict saved with torch.save",
    )
    assert "weights_only" not in stderr


def test_keep_partial_and_sampling_on_the_command_line(tree, tmp_path, capsys):
    root, _, _ = tree
    listing = tmp_path / "l.txt"
    listing.write_text("broken/cut\nwalk/v_walk_g01_c01\n")
    args = [root, "--out", tmp_path / "k", "--stream", "rgb", "--list", listing, *SMALL]
    code, stdout, stderr = _run(capsys, *args)
    assert code == 1 and "rgb: 1 done, 0 skipped, 1 failed" in stdout
    assert "failed: broken/cut: " in stderr and "cut.avi is truncated" in stderr
    code, stdout, _ = _run(capsys, *args, "--keep-partial")
    assert code == 0 and "rgb: 1 done, 1 skipped, 0 failed" in stdout
    code, stdout, _ = _run(
        capsys,
        root,
        "--out",
        tmp_path / "f",
        "--stream",
        "rgb",
        "--list",
        listing,
        "--fps",
        "10",
        "--keep-partial",
        *SMALL,
    )
    assert code == 0 and store.read_info(tmp_path / "f_rgb.h5")["sample_fps"] == 10.0
    assert store.video_attrs(tmp_path / "f_rgb.h5", "walk/v_walk_g01_c01")["n_frames"] == 5


def test_log_lines_go_through_the_progress_bars(tree, tmp_path, capsys, monkeypatch):
    """-v log lines are written by tqdm (above the bars), not printed over them."""
    from tqdm.contrib.logging import _TqdmLoggingHandler

    root, _, _ = tree
    listing = tmp_path / "one.txt"
    listing.write_text("jump/single\n")
    seen = []
    real_write = store.FeatureWriter.write

    def write(self, *args, **kwargs):
        seen.append([type(h) for h in logging.getLogger().handlers])
        return real_write(self, *args, **kwargs)

    monkeypatch.setattr(store.FeatureWriter, "write", write)
    args = [a for a in SMALL if a != "--quiet"]
    code, _, stderr = _run(
        capsys, root, "--out", tmp_path / "v", "--stream", "rgb", "--list", listing, *args, "-v"
    )
    assert code == 0 and "saved jump/single (1 frames)" in stderr
    assert seen and all(_TqdmLoggingHandler in handlers for handlers in seen)


def test_frames_and_another_backbone_from_the_command_line(tree, tmp_path, capsys):
    """--frames N keeps N frames of each video (as fit --train-frames would); --arch takes a
    torchvision model that is not a ResNet, its feature dimension read from the model."""
    root, good, _ = tree
    small = SMALL[:]
    small[small.index("resnet18")] = "mobilenet_v3_small"
    out = tmp_path / "m"
    code, _, _ = _run(capsys, root, "--out", out, "--stream", "rgb", "--frames", "3", *small)
    assert code == 1  # the tree's broken videos fail; the good ones are stored
    path = tmp_path / "m_rgb.h5"
    info = store.read_info(path)
    assert info["arch"] == "mobilenet_v3_small" and info["feature_dim"] == 1024
    assert info["sample_frames"] == 3
    ids = store.list_videos(path)
    assert sorted(ids) == sorted(good)
    for video_id, features in zip(ids, store.load_features(path, ids)[1]):
        assert features.shape == (min(3, good[video_id]), 1024)  # good: id -> frames
    code, _, stderr = _run(capsys, root, "--out", out, "--stream", "rgb", "--frames", "4", *small)
    assert code == 2 and "sample_frames=3 in the file, 4 now" in stderr
