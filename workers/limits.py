"""Every limit on what a request may carry or ask for, in one place.

The HTTP edge checks them and the engine relies on them, so a limit is stated once.
"""

MAX_LEASE_SECONDS = 7 * 24 * 3600
"""Longest lease a project may configure."""

MAX_BATCH_SIZE = 500
"""Largest batch a client may ask for."""

MAX_BODY_BYTES = 32 * 1024 * 1024
"""Largest request body accepted (413 above it). Parsing and storing a JSON body holds
several copies of it at once (text, objects, the stored documents, the Redis commands), and
the process keeps much of that memory for reuse afterwards, a few times the body
(``bench/body_memory.py``, bench/README.md). The cap bounds that near 150 MB a request;
10,000 items of 3 KB fit in one, and bigger uploads go in several."""

MAX_ITEMS_PER_REQUEST = 10_000
"""Largest number of items in one bulk upload."""

MAX_LABELS_PER_REQUEST = 10_000
"""Largest number of labels in one bulk upload."""

MAX_PAGE_SIZE = 1000
"""Most rows one page of a listing (items, labels) holds."""

MAX_PREDICT_ITEMS = 1000
"""Most items one prediction request may carry."""

MAX_TEXT_CHARS = 100_000
"""Longest item text accepted."""

MAX_VECTOR_DIM = 16_384
"""Longest feature vector accepted."""

MAX_METADATA_DEPTH = 32
"""Deepest nesting of objects and arrays allowed in an item's metadata."""

MAX_VECTOR_VALUE = 3.4028234663852886e38
"""Largest magnitude of a vector value: vectors are stored as float32, where anything larger
is infinite and would leave the model no finite probability to rank by."""

MAX_ID_CHARS = 256
"""Longest item id or annotator name accepted."""

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$"
"""What a project or schema name may look like (it becomes part of Redis keys and URLs)."""

MAX_SIMULATION_ROWS = 200_000
"""Largest data set (train and test rows together) a simulation accepts over HTTP."""

MAX_SIMULATION_REPEATS = 20
"""Most repeats a simulation may ask for."""

MAX_LABEL_STUDIO_HEAD = 10_000
"""The largest head a project may push to Label Studio after each ranking."""

MAX_EVAL_SIZE = 100_000
"""The largest evaluation sample a schema may ask for."""
