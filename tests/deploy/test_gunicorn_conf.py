"""botify's gunicorn settings that act inside a worker."""

import gc

from botify import gunicorn_conf


def test_a_worker_freezes_what_it_loaded_so_full_collections_skip_it():
    gc.unfreeze()  # the test process's own state: nothing frozen
    try:
        gunicorn_conf.post_worker_init(worker=None)
        assert gc.get_freeze_count() > 1000  # the modules and objects loaded so far, out of the collector's passes
    finally:
        gc.unfreeze()
