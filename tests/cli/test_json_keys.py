"""One key style in every `--json` output (snake_case, as restic's JSON): keys that name data
(resources, checks, record fields) are left as they are; every key the tool chose is checked,
and every output is valid against its command's JSON Schema (docs/json-schema.json)."""

from __future__ import annotations

import re
from pathlib import Path

import jsonschema
import orjson

from s3db_fixtures import copy_fs_db
from test_ids_and_defaults import run

SNAKE = re.compile(r"^[a-z][a-z0-9]*(_[a-z0-9]+)*$")
DATA_KEYED = {"resources", "checks", "record", "counts", "summary", "totals_by_resource"}  # keys there name data


def camel_keys(value, path="") -> list[str]:
    out = []
    if isinstance(value, dict):
        for k, v in value.items():
            if not SNAKE.match(k):
                out.append(f"{path}/{k}")
            if k in DATA_KEYED and isinstance(v, dict):
                for name, item in v.items():
                    out += camel_keys(item, f"{path}/{k}/{name}") if k != "record" else []
            else:
                out += camel_keys(v, f"{path}/{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += camel_keys(v, f"{path}[{i}]")
    return out


def test_every_json_output_uses_snake_case_keys(tmp_path):
    src, repo = copy_fs_db(tmp_path / "src"), str(tmp_path / "repo")
    outputs = {}

    def json_of(*args: str, ok=(0,)):
        done = run(*args, "--json")
        assert done.returncode in ok, (args, done.stderr)
        outputs[f"{len(outputs)} {args[0]}"] = value = orjson.loads(done.stdout)
        return value

    full = json_of("backup", "--source", f"file://{src}", "--repo", repo)
    json_of("backup", "--source", f"file://{src}", "--repo", repo, "--type", "incremental")
    json_of("list", "--repo", repo)
    json_of("status", "latest", "--repo", repo)
    json_of("verify", "latest", "--repo", repo)
    json_of("verify", "--budget", "1h", "--repo", repo)
    json_of("restore", "latest", "--repo", repo, "--target", str(tmp_path / "dst"), "--dry-run")
    json_of("drill", "latest", "--repo", repo)
    json_of("cleanup", "--repo", repo, "--keep-last", "1")
    json_of("copy", "latest", "--from", repo, "--to", str(tmp_path / "copy"))
    json_of("diff", full["id"], "latest", "--repo", repo)
    json_of("ls", "latest", "--repo", repo)
    json_of("find", "--id", "u1", "--repo", repo)
    json_of("dump", "latest", "users", "u1", "--repo", repo)
    json_of("stats", "--repo", repo)
    json_of("check", "--repo", repo, "--read-data-subset", "1/2")
    json_of("backup", "--source", f"file://{src}", "--repo", repo, "--type", "incremental", "--dry-run")
    assert len(outputs) == 17
    wrong = {cmd: camel_keys(value) for cmd, value in outputs.items() if camel_keys(value)}
    assert wrong == {}
    # docs/json.md documents every command's top-level keys, in order
    documented = {}
    for row in (Path(__file__).resolve().parents[2] / "docs" / "json.md").read_text().splitlines():
        cells = [c.strip() for c in row.strip("|").split("|")] if row.startswith("| `") else []
        if len(cells) == 3:
            documented[cells[0].strip("`")] = re.findall(r"`([a-z_]+)`", cells[2].split(" (and ")[0])
    for key, value in outputs.items():
        command = key.split(" ", 1)[1]
        first = value[0] if isinstance(value, list) else value
        name = {"verify": "verify ID" if "id" in first else "verify --budget",
                "backup": "backup --dry-run" if "dry_run" in first else "backup"}.get(command, command)
        assert list(first) == documented[name], name
        # and the value matches that command's JSON Schema in docs/json-schema.json
        errors = [f"{'/'.join(map(str, e.path))}: {e.message}" for e in schema_for(name).iter_errors(value)]
        assert errors == [], name


def schema_for(name: str) -> jsonschema.Draft202012Validator:
    doc = orjson.loads((Path(__file__).resolve().parents[2] / "docs" / "json-schema.json").read_bytes())
    jsonschema.Draft202012Validator.check_schema(doc)
    return jsonschema.Draft202012Validator({**doc, "$ref": f"#/$defs/{name}"})
