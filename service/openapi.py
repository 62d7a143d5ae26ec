"""Writing ``openapi.yaml`` from the code: ``python -m service.openapi [PATH]``.

The same document is served at ``/openapi.json``. ``python -m service.openapi --check``
exits 1 when the committed file differs from what the code generates (CI runs it).
"""

from __future__ import annotations

import sys
from pathlib import Path

import yaml

from service import create_app
from service.extensions import api

DEFAULT_PATH = Path(__file__).resolve().parent.parent / "openapi.yaml"


def spec_dict() -> dict:
    create_app({"REDIS_URL": "redis://127.0.0.1:1/0", "AUTH": False})  # never connects
    return api.spec.to_dict()


def render() -> str:
    return yaml.safe_dump(spec_dict(), sort_keys=False, allow_unicode=True)


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    check = "--check" in args
    args = [a for a in args if a != "--check"]
    path = Path(args[0]) if args else DEFAULT_PATH
    if check:
        if yaml.safe_load(path.read_text(encoding="utf-8")) != spec_dict():
            sys.exit(f"{path} is out of date: run 'python -m service.openapi' and commit the result")
        print(f"{path} matches the code")
        return
    path.write_text(render(), encoding="utf-8")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
