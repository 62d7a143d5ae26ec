"""``alrank`` commands that talk to a running service, on ``alrank.client``.

The service is found through ``--url`` and ``--key``, or ``ALRANK_URL`` and
``ALRANK_API_KEY``. Exit codes a script can rely on:

- 0: done;
- 1: the service refused the request (the message is its problem document's detail);
- 2: the command line or an input file is wrong;
- 3: the service could not be reached, or stayed unavailable through the retries;
- 4: ``train --wait``: the job ended without success.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import sys
from pathlib import Path
from typing import Any

from alrank.client import ApiError, Client, Unreachable
from alrank.records import InputError, count_records, read_records, read_text, readable
from alrank.tables import curve_table, table

COMMANDS = ("projects", "items", "labels", "next", "train", "metrics", "label-issues")
"""The first words of the commands this module runs (``service.cli`` hands them over)."""

EXIT_REFUSED, EXIT_USAGE, EXIT_UNREACHABLE, EXIT_JOB_FAILED = 1, 2, 3, 4


def add_projects(sub) -> None:
    """``alrank projects`` and its actions."""
    projects = sub.add_parser("projects", help="create, list, show, delete, export or import projects")
    ps = projects.add_subparsers(dest="action", required=True)
    create = ps.add_parser("create", help="create a project from a JSON or YAML file, or a Potato config")
    create.add_argument("file", type=Path)
    create.add_argument(
        "--name", help="the project's name (a Potato config's annotation_task_name otherwise)"
    )
    ps.add_parser("list", help="the projects this key may see")
    show = ps.add_parser("show", help="a project's settings and counts")
    show.add_argument("project")
    delete = ps.add_parser("delete", help="delete a project with everything in it")
    delete.add_argument("project")
    export = ps.add_parser(
        "export", help="write a whole project (settings, items, labels, model history) to stdout or --out"
    )
    export.add_argument("project")
    export.add_argument("--out", type=Path, help="the file to write (default: stdout)")
    export.add_argument("--keys", action="store_true", help="carry the API keys (their hashes; admin key)")
    export.add_argument("--no-progress", action="store_true", help="no progress bar")
    imp = ps.add_parser("import", help="create a project from an export ('-': stdin); admin key")
    imp.add_argument("file", help="an export (.alrank, or .alrank.gz), or - for stdin")
    imp.add_argument("--name", help="import under this name instead of the exported one")
    imp.add_argument("--no-keys", action="store_true", help="leave out the API keys the export carries")
    imp.add_argument("--no-progress", action="store_true", help="no progress bar")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="alrank", description="Talk to a running alrank service")
    p.add_argument("--url", help="the service (default: $ALRANK_URL or http://127.0.0.1:8000)")
    p.add_argument("--key", help="an API key (default: $ALRANK_API_KEY)")
    sub = p.add_subparsers(dest="command", required=True)

    add_projects(sub)

    items = sub.add_parser("items", help="upload the pool")
    its = items.add_subparsers(dest="action", required=True)
    upload = its.add_parser(
        "upload",
        help="upload items from JSONL (.gz), CSV or Parquet; resumes where an interrupted upload stopped",
    )
    upload.add_argument("project")
    upload.add_argument("file", type=Path)
    upload.add_argument("--id-key", default="id", help="the field holding the item's id (default: id)")
    upload.add_argument("--text-key", default="text", help="the field holding its text (default: text)")
    upload.add_argument(
        "--restart", action="store_true", help="start from the first record, not where it stopped"
    )
    upload.add_argument("--no-progress", action="store_true", help="no progress bar")

    labels = sub.add_parser("labels", help="send labels, or export them")
    ls = labels.add_subparsers(dest="action", required=True)
    push = ls.add_parser("push", help="send labels from JSONL or CSV: item, schema, value, annotator")
    push.add_argument("project")
    push.add_argument("file", type=Path)
    push.add_argument("--no-progress", action="store_true")
    lex = ls.add_parser(
        "export",
        help="write every label as JSON Lines (item, text, schema, annotator, value, updated_at)",
    )
    lex.add_argument("project")
    lex.add_argument("--schema", help="only this schema's labels")
    lex.add_argument("--annotator", help="only this annotator's labels")
    lex.add_argument("--since", help="only labels set at or after this time (ISO 8601, UTC if no zone)")
    lex.add_argument("--out", type=Path, help="the file to write (default: stdout)")
    lex.add_argument("--no-progress", action="store_true", help="no progress bar")

    nxt = sub.add_parser("next", help="the next batch for an annotator")
    nxt.add_argument("project")
    nxt.add_argument("--schema", required=True)
    nxt.add_argument("--annotator", required=True)
    nxt.add_argument("--size", type=int)
    nxt.add_argument("--json", action="store_true", help="print the batch as JSON")

    train = sub.add_parser("train", help="retrain a schema now")
    train.add_argument("project")
    train.add_argument("--schema", required=True)
    train.add_argument("--wait", action="store_true", help="follow the job's stage until it ends")

    metrics = sub.add_parser(
        "metrics",
        help="the learning curve on the evaluation sample, with 95% intervals and the gain over random",
    )
    metrics.add_argument("project")
    metrics.add_argument("--schema", required=True)
    metrics.add_argument("--png", type=Path, help="also save the plot (the curve with its 95%% band) here")
    metrics.add_argument("--json", action="store_true", help="print the metrics as JSON")

    issues = sub.add_parser(
        "label-issues", help="labels the data contradicts, worst first, with the label a model suggests"
    )
    issues.add_argument("project")
    issues.add_argument("--schema", required=True)
    issues.add_argument("--limit", type=int, default=20)
    issues.add_argument("--json", action="store_true", help="print the list as JSON")
    return p


def command_help() -> list[tuple[str, str]]:
    """Each command of this module with its one-line help, for ``alrank --help``."""
    return subcommands(parser())


def subcommands(p: argparse.ArgumentParser) -> list[tuple[str, str]]:
    """The subcommands of ``p`` with their help lines, in the order they were added."""
    return [
        (choice.dest, choice.help or "")
        for action in p._actions
        if isinstance(action, argparse._SubParsersAction)
        for choice in action._choices_actions
    ]


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    client = Client(args.url, args.key)
    try:
        return RUN[args.command](client, args)
    except ApiError as exc:
        print(f"alrank: {exc.status} {exc.title}: {exc.detail}", file=sys.stderr)
        return EXIT_REFUSED
    except Unreachable as exc:
        print(f"alrank: the service is unavailable: {exc}", file=sys.stderr)
        return EXIT_UNREACHABLE
    except InputError as exc:
        print(f"alrank: {exc}", file=sys.stderr)
        return EXIT_USAGE


# -- projects --------------------------------------------------------------------------


def run_projects(client: Client, args) -> int:
    if args.action == "list":
        for name in client.projects():
            print(name)
    elif args.action == "show":
        print(json.dumps(client.project(args.project), indent=2))
    elif args.action == "delete":
        client.delete_project(args.project)
        print(f"deleted {args.project}")
    elif args.action == "export":
        total, lines = client.export_project(args.project, keys=args.keys)
        written = write_lines(lines, args.out, total, "items", args.no_progress, counts=b'{"item"')
        print(f"exported {args.project}: {written:,} items", file=sys.stderr)
    elif args.action == "import":
        result = import_project(client, args)
        print(
            f"imported {result['project']}: {result['items']:,} items, {result['labels']:,} labels, "
            f"{result['api_keys']} API keys; retraining {', '.join(result['training_jobs']) or 'nothing'}"
        )
    else:
        created = create_project(client, args.file, args.name)
        print(json.dumps(created, indent=2))
    return 0


def create_project(client: Client, path: Path, name: str | None) -> dict:
    import yaml

    text = read_text(path)
    try:
        doc = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        raise InputError(f"{path} is not JSON or YAML: {exc}") from exc
    if not isinstance(doc, dict):
        raise InputError(f"{path} holds no project: expected a mapping at the top")
    if "annotation_schemes" in doc:  # a Potato config, sent whole
        return client.create_project_from_potato(text, name)
    if name:
        doc["name"] = name
    return client.create_project(doc)


# -- items and labels ------------------------------------------------------------------


def run_items(client: Client, args) -> int:
    records = read_records(readable(args.file))

    def item(row: dict) -> dict:
        if args.id_key not in row:
            raise InputError(f"{args.file}: a record has no {args.id_key!r} field (use --id-key)")
        out: dict[str, Any] = {"id": str(row[args.id_key])}
        if row.get(args.text_key) is not None:
            out["text"] = str(row[args.text_key])
        if row.get("vector") is not None:
            out["vector"] = row["vector"] if isinstance(row["vector"], list) else json.loads(row["vector"])
        rest = {k: v for k, v in row.items() if k not in (args.id_key, args.text_key, "vector", "metadata")}
        metadata = row.get("metadata")
        out["metadata"] = {**rest, **(metadata if isinstance(metadata, dict) else {})}
        return out

    result = upload(
        client.upload_items,
        args.project,
        args.file,
        (item(r) for r in records),
        args.restart,
        args.no_progress,
    )
    print(f"{result['created']} created, {result['updated']} updated; pool of {result['pool_size']}")
    return 0


def write_lines(lines, out: Path | None, total: int, unit: str, quiet: bool, counts: bytes = b"") -> int:
    """Copy streamed lines to ``out`` (stdout by default) with a progress bar on stderr
    counting the lines that start with ``counts``; returns how many did. A file is written
    whole or not at all."""
    from tqdm import tqdm

    partial = out.with_name(out.name + ".part") if out is not None else None
    sink = open(partial, "wb") if partial is not None else sys.stdout.buffer
    bar = tqdm(total=total or None, unit=unit, disable=quiet, file=sys.stderr, dynamic_ncols=True)
    n = 0
    try:
        for line in lines:
            sink.write(line)
            if line.startswith(counts):
                n += 1
                bar.update(1)
        sink.flush()
    finally:
        bar.close()
        if partial is not None:
            sink.close()
    if out is not None and partial is not None:
        os.replace(partial, out)
    return n


def import_project(client: Client, args) -> dict:
    from tqdm import tqdm

    if args.file == "-":
        return client.import_project(sys.stdin.buffer, args.name, keys=not args.no_keys)
    path = readable(Path(args.file))
    opener = gzip.open if path.name.endswith(".gz") else open
    size = path.stat().st_size
    with (
        opener(path, "rb") as f,
        tqdm(total=size, unit="B", unit_scale=True, disable=args.no_progress, file=sys.stderr) as bar,
    ):
        raw = f.fileobj if isinstance(f, gzip.GzipFile) else f  # progress in bytes of the file

        def chunks():
            while block := f.read(1 << 20):
                bar.n = raw.tell() if hasattr(raw, "tell") else bar.n + len(block)
                bar.refresh()
                yield block

        return client.import_project(chunks(), args.name, keys=not args.no_keys)


def run_labels(client: Client, args) -> int:
    if args.action == "export":
        total, lines = client.export_labels(
            args.project, schema=args.schema, annotator=args.annotator, updated_since=args.since
        )
        written = write_lines(lines, args.out, total, "labels", args.no_progress, counts=b"{")
        print(f"exported {written:,} labels of {args.project}", file=sys.stderr)
        return 0
    fields = ("item", "schema", "value", "annotator")

    def label(row: dict) -> dict:
        missing = [f for f in fields if row.get(f) in (None, "")]
        if missing:
            raise InputError(f"{args.file}: a label lacks {missing}")
        value = row["value"]
        if isinstance(value, str) and value.startswith("["):
            value = json.loads(value)  # a multi-label value in a CSV cell
        return {
            "item": str(row["item"]),
            "schema": row["schema"],
            "value": value,
            "annotator": row["annotator"],
        }

    result = upload(
        client.push_labels,
        args.project,
        args.file,
        (label(r) for r in read_records(readable(args.file))),
        True,
        args.no_progress,
    )
    print(f"{result['received']} labels sent, {result['new']} new")
    for schema, job in result["training_jobs"].items():
        print(f"retraining {schema}: job {job}")
    return 0


def upload(send, project: str, path: Path, records, restart: bool, quiet: bool) -> dict:
    """Send records with a progress bar (rate and ETA). The count sent so far is kept
    beside the file, so an interrupted upload carries on where it stopped."""
    from tqdm import tqdm

    marker = path.with_name(path.name + ".alrank-upload")
    stat = path.stat()
    here = {"project": project, "size": stat.st_size, "mtime": stat.st_mtime_ns}
    done = 0
    if not restart and marker.exists():
        try:
            saved = json.loads(marker.read_text())
        except ValueError:  # written by an older client that was killed mid-write
            saved = {}
            print(f"{marker.name} is unreadable: starting from the first record", file=sys.stderr)
        if {k: saved.get(k) for k in here} == here:
            done = int(saved["done"])
    total = count_records(path)
    if done:
        print(f"resuming after record {done:,} of {total:,} ({marker.name})", file=sys.stderr, flush=True)
    bar = tqdm(total=total, initial=done, unit="rec", disable=quiet, file=sys.stderr, dynamic_ncols=True)
    sent = done

    def progress(n: int) -> None:
        nonlocal sent
        sent += n
        # whole or not at all: a kill mid-write must leave the count before it, not half a file
        partial = marker.with_name(marker.name + ".part")
        partial.write_text(json.dumps({**here, "done": sent}))
        os.replace(partial, marker)
        bar.update(n)

    skip = iter(records)
    for _ in range(done):
        next(skip, None)
    try:
        result = send(project, skip, progress=progress)
    finally:
        bar.close()
    marker.unlink(missing_ok=True)
    return result


# -- reading files ---------------------------------------------------------------------


# -- batches, training, metrics ----------------------------------------------------------


def run_next(client: Client, args) -> int:
    batch = client.next(args.project, args.schema, args.annotator, args.size)
    if args.json:
        print(json.dumps(batch, indent=2))
        return 0
    print(
        f"{len(batch['items'])} items for {batch['annotator']} "
        f"({batch['strategy']}, model {batch['model_version']})"
    )
    for it in batch["items"]:
        guess = it.get("prediction") or {}
        hint = f"  [{guess['label']} {guess['confidence']:.2f}]" if guess else ""
        text = (it.get("text") or "").replace("\n", " ")
        print(f"{it['id']}\t{text[:100]}{hint}")
    return 0


def run_train(client: Client, args) -> int:
    ref = client.train(args.project, args.schema)
    print(f"job {ref['job']}")
    if not args.wait:
        return 0
    last = None

    def show(state: dict) -> None:
        nonlocal last
        progress = state.get("progress") or {}
        line = f"{state['status']}: {progress.get('stage', '')} {progress.get('fraction', 0):.0%}".rstrip()
        if line != last:
            print(line, flush=True)
            last = line

    state = client.wait(ref["job"], on_progress=show)
    result = state.get("result") or {}
    if state["status"] != "finished":
        print(f"the job ended {state['status']}: {state.get('error') or ''}", file=sys.stderr)
        return EXIT_JOB_FAILED
    print(
        f"{result.get('status')}: model version {result.get('model_version')}, "
        f"ranking {result.get('ranking_id')}, {result.get('seconds')} s"
    )
    return 0


def run_metrics(client: Client, args) -> int:
    metrics = client.metrics(args.project, args.schema)
    if args.json:
        print(json.dumps(metrics, indent=2))
    else:
        print(curve_table(metrics))
    if args.png:
        args.png.write_bytes(client.metrics_png(args.project, args.schema))
        print(f"plot saved to {args.png}")
    return 0


def run_label_issues(client: Client, args) -> int:
    found = client.label_issues(args.project, args.schema, args.limit)
    if args.json:
        print(json.dumps(found, indent=2))
        return 0
    print(
        f"{found['status']}: {found.get('flagged', 0)} of {found.get('checked', 0)} labels flagged, "
        f"{found.get('queued_for_review', 0)} waiting for review"
    )
    rows = [("item", "given", "suggested", "score", "annotators")]
    for issue in found.get("issues", []):
        who = ", ".join(f"{a}: {v}" for a, v in issue["annotators"].items())
        score = f"{issue['score']:.3f}"
        rows.append((issue["item"], str(issue["given"]), str(issue["suggested"]), score, who))
    if len(rows) > 1:
        print(table(rows))
    return 0


RUN = {
    "projects": run_projects,
    "items": run_items,
    "labels": run_labels,
    "next": run_next,
    "train": run_train,
    "metrics": run_metrics,
    "label-issues": run_label_issues,
}


if __name__ == "__main__":
    sys.exit(main())
