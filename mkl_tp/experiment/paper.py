"""The paper's Tables 1-7 on your caches: the sweeps each needs, and the tables printed
beside the paper's UCF-101 figures.

``python -m mkl_tp.reproduce`` runs the sweeps of :func:`runs` through ``python -m
mkl_tp.fit`` (each resumable in its own folder) and prints :func:`tables`:

- Tables 2-4 (level by level, motion, appearance and joint; shallow and deep,
  concatenation and averaging; the stream weights): one sweep ``--model deep --levels 1-6``;
- Table 5 (the number of temporal pyramids per stream, deep, 6 levels): one sweep per
  count, ``--deep-pyramids N``;
- Table 6 (the sampling strategies #1-#8: frames per training and test video, per stream):
  one sweep per strategy, ``--train-frames`` / ``--test-frames``;
- Table 1 (backbones, the fixed pyramid of uniform weights at 6 levels, appearance): one
  sweep per ``--backbone NAME=H5`` cache given (made by ``extract --arch NAME``).

Table 7 is printed with the paper's figures only: its speed-up comes from back-propagating
into the backbone on a fraction of the frames (Eq. 7), which a fit on cached features never
does; :func:`mkl_tp.deep.finetune.finetune` runs it on videos.
"""

__all__ = ["PAPER", "STRATEGIES", "runs", "tables"]

# The paper's UCF-101 figures (split 1, accuracy %), table by table.
PAPER = {
    1: {
        "alexnet": 58.14,
        "vgg11": 63.12,
        "vgg19": 63.42,
        "resnet18": 68.32,
        "resnet50": 68.39,
        "resnet101": 68.47,
        "resnet152": 68.58,
    },
    # level -> (shallow concat, shallow averaging, deep concat, deep averaging)
    2: {
        1: (78.40, 78.40, 78.66, 78.66),
        2: (79.53, 79.54, 79.86, 79.76),
        3: (79.70, 79.71, 79.93, 79.83),
        4: (79.76, 79.77, 81.14, 80.66),
        5: (80.23, 80.24, 81.43, 80.84),
        6: (79.96, 79.98, 81.69, 80.12),
    },
    3: {
        1: (80.28, 80.28, 80.31, 80.31),
        2: (81.77, 81.78, 82.16, 82.21),
        3: (82.17, 82.17, 82.74, 82.89),
        4: (82.51, 82.50, 83.52, 83.38),
        5: (82.50, 82.51, 83.63, 80.83),
        6: (81.96, 81.96, 83.92, 80.83),
    },
    # level -> (shallow motion, appear, joint, deep motion, appear, joint, w_motion, w_appear)
    4: {
        1: (78.40, 80.28, 88.91, 78.74, 80.69, 89.69, 0.46, 0.54),
        2: (79.53, 81.77, 89.10, 79.97, 82.78, 90.00, 0.49, 0.51),
        3: (79.70, 82.17, 89.34, 80.69, 83.12, 90.26, 0.52, 0.48),
        4: (79.76, 82.51, 89.37, 81.74, 83.78, 90.92, 0.52, 0.48),
        5: (80.23, 82.50, 84.49, 82.86, 84.10, 91.45, 0.56, 0.44),
        6: (79.96, 81.96, 89.26, 83.41, 84.92, 92.37, 0.60, 0.40),
    },
    # pyramids per stream -> (appearance, motion, joint)
    5: {
        1: (83.92, 81.69, 90.78),
        2: (83.95, 81.73, 90.79),
        4: (83.97, 81.79, 90.84),
        8: (83.92, 81.86, 90.89),
        16: (83.89, 81.83, 90.85),
    },
    # strategy -> (appearance, motion, fusion)
    6: {
        1: (84.23, 81.27, 91.65),
        2: (84.23, 81.27, 91.64),
        3: (84.23, 81.86, 91.69),
        4: (84.23, 81.89, 91.78),
        5: (84.62, 82.05, 91.89),
        6: (84.81, 82.77, 92.09),
        7: (84.81, 83.41, 92.29),
        8: (84.92, 83.41, 92.37),
    },
    # K -> (average frames per epoch and video, appearance, motion, joint)
    7: {1: (185, 84.92, 83.41, 92.37), 4: (92, 84.27, 82.59, 91.74), 8: (46, 84.10, 82.07, 91.39)},
}
# Table 6's strategies: frames per (train RGB, train flow, test RGB, test flow) video.
STRATEGIES = {
    1: (25, 25, 25, 25),
    2: (25, 25, 25, 250),
    3: (25, 50, 25, 50),
    4: (25, 50, 25, 250),
    5: (64, 64, 250, 250),
    6: (64, 64, "all", "all"),
    7: (64, "all", "all", "all"),
    8: ("all", "all", "all", "all"),
}
_DEEP = "deep-concat"


def runs(args, appearance, motion):
    """``{name: fit argv}`` of every sweep the asked tables need (name = its folder)."""
    data = ["--splits", args.splits, "--split", str(args.split), "--seed", str(args.seed)]
    data += ["--format", args.format] if args.format else []
    both = ["--features", args.features[0], "--features", args.features[1]] + data
    deepest = str(max(args.levels))
    todo = {}
    networks = ["--deep-networks", str(args.deep_networks)]
    if {2, 3, 4} & args.tables:
        levels = f"{min(args.levels)}-{deepest}"
        todo["levels"] = both + ["--model", "deep", "--levels", levels] + networks
    deep = both + ["--model", "deep", "--levels", deepest] + networks
    for count in sorted(PAPER[5]) if 5 in args.tables else ():
        todo[f"pyramids_{count}"] = deep + ["--deep-pyramids", str(count)]
    for number, counts in STRATEGIES.items() if 6 in args.tables else ():
        train = f"{appearance}={counts[0]},{motion}={counts[1]}"
        test = f"{appearance}={counts[2]},{motion}={counts[3]}"
        todo[f"sampling_{number}"] = deep + ["--train-frames", train, "--test-frames", test]
    for name, path in args.backbone if 1 in args.tables else ():
        todo[f"backbone_{name}"] = ["--features", path] + data + ["--levels", deepest]
    return todo


def _cell(report, level, config, column):
    """A cell's accuracy in %, or None where the report lacks it."""
    cell = report.get("cells", {}).get(str(level), {}).get(config, {}).get(column)
    return None if cell is None else 100 * cell["accuracy"]


def _pair(ours, paper, digits=2):
    text = "-" if ours is None else f"{ours:.{digits}f}"
    return f"{text:>6} ({paper:.{digits}f})"


def _table(title, header, rows):
    lines = [title, "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def tables(reports, appearance, motion, asked, levels):
    """The asked tables as text: each of our figures beside the paper's, ``ours (paper)``.

    ``reports`` maps a run's name (:func:`runs`) to its report.json content.
    """
    fusion = "joint"
    out = []
    sweep = reports.get("levels", {})
    for number, stream, word in ((2, motion, "motion"), (3, appearance, "appearance")):
        if number in asked:
            rows = [
                [level]
                + [
                    _pair(_cell(sweep, level, stream, col), PAPER[number][level][i])
                    for i, col in enumerate(("linear", "cross", _DEEP, "deep-average"))
                ]
                for level in levels
            ]
            header = ["level", "shallow concat", "shallow avg", "deep concat", "deep avg"]
            out.append(_table(f"Table {number}: {word} stream ({stream})", header, rows))
    if 4 in asked:
        rows = []
        for level in levels:
            paper = PAPER[4][level]
            cells = [
                _cell(sweep, level, config, column)
                for column in ("linear", _DEEP)
                for config in (motion, appearance, fusion)
            ]
            joint = sweep.get("cells", {}).get(str(level), {}).get(fusion, {}).get(_DEEP, {})
            weights = joint.get("stream_weights", {})
            w = [weights.get(motion), weights.get(appearance)]
            rows.append(
                [level]
                + [_pair(v, p) for v, p in zip(cells, paper[:6])]
                + [_pair(v, p) for v, p in zip(w, paper[6:])]
            )
        header = ["level"] + [
            f"{k} {s}" for k in ("shallow", "deep") for s in ("motion", "appear", "joint")
        ]
        out.append(_table("Table 4: joint fusion (concatenation)", header + ["w_m", "w_a"], rows))
    deepest = max(levels)
    trio = (appearance, motion, fusion)
    if 5 in asked:
        rows = [
            [count]
            + [
                _pair(_cell(reports.get(f"pyramids_{count}", {}), deepest, c, _DEEP), p)
                for c, p in zip(trio, PAPER[5][count])
            ]
            for count in sorted(PAPER[5])
        ]
        header = ["pyramids", "appearance", "motion", "joint"]
        out.append(_table(f"Table 5: pyramids per stream (deep, {deepest} levels)", header, rows))
    if 6 in asked:
        rows = [
            [f"#{n}", *STRATEGIES[n]]
            + [
                _pair(_cell(reports.get(f"sampling_{n}", {}), deepest, c, _DEEP), p)
                for c, p in zip(trio, PAPER[6][n])
            ]
            for n in STRATEGIES
        ]
        header = ["#", "train RGB", "train OF", "test RGB", "test OF", "appear", "motion", "fusion"]
        out.append(_table(f"Table 6: sampling strategies (deep, {deepest} levels)", header, rows))
    if 7 in asked:
        rows = [[k, n, *(f"{v:.2f}" for v in values)] for k, (n, *values) in PAPER[7].items()]
        out.append(
            _table(
                "Table 7 (the paper's figures only: Eq. 7 speeds up back-propagation into the "
                "backbone, which a fit on cached features does not do; "
                "mkl_tp.deep.finetune.finetune runs it on videos)",
                ["K", "frames per epoch and video", "appearance", "motion", "joint"],
                rows,
            )
        )
    if 1 in asked:
        names = sorted({n.split("_", 1)[1] for n in reports if n.startswith("backbone_")})
        rows = []
        for name in names:
            report = reports[f"backbone_{name}"]
            config = next(iter(report.get("cells", {}).get(str(deepest), {})), None)
            ours = _cell(report, deepest, config, "uniform")
            rows.append([name, _pair(ours, PAPER[1][name]) if name in PAPER[1] else ours])
        title = f"Table 1: backbones (uniform weights, {deepest} levels, appearance)"
        out.append(_table(title, ["backbone", "accuracy"], rows))
    return "\n\n".join(out)
