"""gunicorn settings file for the benchmark: deliberately empty.

The benchmark passes every setting on gunicorn's command line (see
``bench/run.py``); naming this file keeps gunicorn from reading a
``gunicorn.conf.py`` in the working directory, so the figures depend on the
command line alone.
"""
