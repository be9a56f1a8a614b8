"""Experiments: the fit sweep behind ``python -m mkl_tp.fit`` and what it reports.

- :mod:`~mkl_tp.experiment.inputs`: feature files and split files into sequences;
- :mod:`~mkl_tp.experiment.options`: the fit options' values from their text;
- :mod:`~mkl_tp.experiment.sweep`: the cells' models, the (C, p) search and the cell loop;
- :mod:`~mkl_tp.experiment.cells`: the sweep's record (report.json), progress and outputs;
- :mod:`~mkl_tp.experiment.report`: metrics, level tables, report.json and plots;
- :mod:`~mkl_tp.experiment.bundled`: how the bundled sample's caches are made.
"""
