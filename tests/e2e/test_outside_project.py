"""A team's own Meltano project, outside this repository, follows docs/own-project.md to a run.

The block of commands marked "own-project path" in docs/own-project.md (README.md shows the
same block) runs as it is, with bash, in an empty folder: `meltano init`, the `meltano add`
commands with the definitions `make dist` writes, `meltano install`, `meltano invoke
tap-chatra --discover` and `meltano run tap-chatra target-jsonl`, against a sandbox. Only its
placeholders are replaced (keys, paths), the API URL is given as a variable, and `meltano add
... target-jsonl` takes its definition from tests/e2e/outside_project/, since Meltano Hub
cannot be reached from CI. Nothing in the plugin venvs comes from the checkout: the wheels are
the session's (tests/conftest.py), the definitions are `scripts/build_dist.py`'s.

All of it runs with the Meltano the repository pins, then with the newest Meltano 4 on the
package index, installed in a venv of its own; that second round is skipped, with the reason,
when the index cannot be reached or its newest 4.x is the pinned version. Each round is one
test, checking one thing after another, so that parallel workers never run a round twice.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import yaml
from packaging.requirements import Requirement

from tests.conftest import REPO_ROOT, package_metadata
from tests.e2e.conftest import BIN, isolated_environ

if TYPE_CHECKING:
    from collections.abc import Callable

    from chatra_sandbox import SandboxServer

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]

HERE = Path(__file__).resolve().parent / "outside_project"
DOC = REPO_ROOT / "docs" / "own-project.md"
MARKER = "<!-- own-project path:"
PLUGINS = {"extractors": ["tap-chatra"], "loaders": ["target-chatra-push", "target-jsonl"]}
#: The documented placeholders, each replaced for the test; all must appear in the block.
CHECKOUT_DIST = "~/chatra-meltano/dist"
KEYS = "PUBLIC_KEY:SECRET_KEY"
CLIENT_IDS = "/path/to/client_ids.txt"
HUB_ADD = "meltano add --plugin-type loader --no-install target-jsonl"
STEP_TIMEOUT = 600


def documented_block(text: str) -> list[str]:
    """The command lines of the first ```sh block after the own-project marker."""
    after = text[text.index(MARKER) :]
    start = after.index("```sh\n") + len("```sh\n")
    return after[start : after.index("```", start)].strip().splitlines()


def pinned_meltano() -> str:
    for line in (REPO_ROOT / "constraints.txt").read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#") and Requirement(line).name == "meltano":
            return str(next(iter(Requirement(line).specifier)).version)
    msg = "constraints.txt pins no meltano"
    raise AssertionError(msg)


def newest_meltano_4() -> str:
    """The newest Meltano 4.x on the package index; skips the caller if it cannot be asked."""
    environ = {k: v for k, v in os.environ.items() if k != "PIP_CONSTRAINT"}
    result = subprocess.run(
        [
            *(sys.executable, "-m", "pip", "install", "--dry-run", "--quiet", "--no-deps"),
            *("--ignore-installed", "--report", "-", "meltano>=4,<5"),
        ],
        env=environ,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if result.returncode != 0:
        reason = (result.stderr.strip().splitlines() or ["no output"])[-1]
        pytest.skip(f"the package index cannot be reached to find the newest Meltano 4: {reason}")
    (install,) = json.loads(result.stdout)["install"]
    return str(install["metadata"]["version"])


@pytest.fixture(params=["pinned", "newest"])
def meltano_bin(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The `meltano` executable: this venv's (pinned), or the newest 4.x in a venv of its own."""
    pinned = pinned_meltano()
    if request.param == "pinned":
        return BIN / "meltano"
    newest = newest_meltano_4()
    if newest == pinned:
        pytest.skip(f"the newest Meltano 4 on the package index is {newest}, the pinned one")
    venv = tmp_path_factory.mktemp("meltano-newest") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    environ = {k: v for k, v in os.environ.items() if k != "PIP_CONSTRAINT"}
    subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", f"meltano=={newest}"],
        env=environ,
        check=True,
        timeout=STEP_TIMEOUT,
    )
    print(f"\nthe newest Meltano 4 on the package index: {newest} (pinned: {pinned})")
    return venv / "bin" / "meltano"


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory, built_dists: Path) -> Path:
    """What `make dist` writes: the session's wheels, and the definitions that install them."""
    folder = tmp_path_factory.mktemp("dist")
    for wheel in built_dists.glob("*.whl"):
        (folder / wheel.name).symlink_to(wheel)
    subprocess.run(
        [
            *(sys.executable, str(REPO_ROOT / "scripts" / "build_dist.py")),
            *("--outdir", str(folder), "--definitions-only"),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    return folder


@pytest.fixture
def sandbox(chatra_sandbox_factory: Callable[..., SandboxServer]) -> SandboxServer:
    return chatra_sandbox_factory(
        seed=5, clients=5, messages=6, pushed_messages=2, requests_per_minute=0
    )


@dataclass
class OwnProject:
    """The user's project after the documented path ran, and how to run meltano in it."""

    root: Path
    meltano: Path
    env: dict[str, str]
    log: str

    def run(
        self, *args: str, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self.meltano), *args],
            cwd=self.root,
            env={**self.env, **(env or {})},
            capture_output=True,
            text=True,
            timeout=STEP_TIMEOUT,
            check=False,
            stdin=subprocess.DEVNULL,
        )


def runnable(block: list[str], dist: Path, client_ids: Path, keys: str, jsonl: Path) -> str:
    """The documented block as a bash script, placeholders replaced."""
    text = "\n".join(block)
    for placeholder in (CHECKOUT_DIST, KEYS, CLIENT_IDS, HUB_ADD):
        assert placeholder in text, f"docs/own-project.md no longer has {placeholder!r}"
    text = text.replace(
        HUB_ADD, HUB_ADD.replace("--no-install", f"--from-ref {jsonl} --no-install")
    )
    text = text.replace(CHECKOUT_DIST, str(dist)).replace(KEYS, keys)
    return "set -euxo pipefail\n" + text.replace(CLIENT_IDS, str(client_ids)) + "\n"


def follow_the_documented_path(
    folder: Path, meltano_bin: Path, dist: Path, sandbox: SandboxServer
) -> OwnProject:
    """Run the block of docs/own-project.md in `folder`; the project it made."""
    folder.mkdir()
    assert not folder.is_relative_to(REPO_ROOT)
    client_ids = sandbox.write_id_files(folder / "ids")["clients"]
    # target-jsonl as Meltano Hub defines it, with pins for its old dependencies.
    jsonl = folder / "target-jsonl.yml"
    definition = yaml.safe_load((HERE / "target-jsonl.yml").read_text(encoding="utf-8"))
    definition["pip_url"] += f" -c {HERE / 'target-jsonl-constraints.txt'}"
    jsonl.write_text(yaml.safe_dump(definition, sort_keys=False), encoding="utf-8")
    script = folder / "own-project.sh"
    block = documented_block(DOC.read_text(encoding="utf-8"))
    script.write_text(runnable(block, dist, client_ids, sandbox.key_pair, jsonl), encoding="utf-8")
    env = isolated_environ(
        PATH=f"{meltano_bin.parent}{os.pathsep}{os.environ['PATH']}",
        MELTANO_SEND_ANONYMOUS_USAGE_STATS="false",
        MELTANO_CLI_DISABLE_VERSION_CHECK="true",
        TAP_CHATRA_API_URL=sandbox.api_url,
        TAP_CHATRA_REQUESTS_PER_MINUTE="0",
    )
    started = time.monotonic()
    result = subprocess.run(
        ["bash", str(script)],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=STEP_TIMEOUT,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    log = result.stdout + result.stderr
    assert result.returncode == 0, "\n".join(log.splitlines()[-80:])
    print(f"\nthe documented path took {time.monotonic() - started:.0f} s with {meltano_bin}")
    return OwnProject(folder / "my-project", meltano_bin, env, log)


def test_the_readme_shows_the_tested_path() -> None:
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    assert documented_block(readme) == documented_block(DOC.read_text(encoding="utf-8"))


def check_each_plugin_is_added_once(own_project: OwnProject) -> None:
    project = yaml.safe_load((own_project.root / "meltano.yml").read_text(encoding="utf-8"))
    added = {kind: [p["name"] for p in plugins] for kind, plugins in project["plugins"].items()}
    assert added == PLUGINS
    assert ".chatra-push/" in (own_project.root / ".gitignore").read_text().splitlines()


def check_the_catalog_and_the_run(own_project: OwnProject, sandbox: SandboxServer) -> None:
    catalog = json.loads((own_project.root / "catalog.json").read_text(encoding="utf-8"))
    assert {
        s["tap_stream_id"]: s["replication_method"] for s in catalog["streams"]
    } == dict.fromkeys(
        ["webhook_events", "chat_messages", "messages", "pushed_messages", "clients"], "INCREMENTAL"
    )
    lines = (own_project.root / "output" / "clients.jsonl").read_text().splitlines()
    assert sorted(json.loads(line)["id"] for line in lines) == sorted(sandbox.ids("clients"))
    assert "clients: incremental by ID: no ID fetched before in STATE" in own_project.log


def check_the_plugins_come_from_the_wheels_alone(own_project: OwnProject) -> None:
    for plugin_type, name in (("extractors", "tap-chatra"), ("loaders", "target-chatra-push")):
        venv = own_project.root / ".meltano" / plugin_type / name / "venv"
        (site_packages,) = venv.glob("lib/python*/site-packages")
        installed = {path.name.split("-")[0] for path in site_packages.glob("*.dist-info")}
        assert {"chatra_client", name.replace("-", "_")} <= installed
        # Installed from the wheels, not linked to the checkout (no editable .pth files).
        assert not [p for p in site_packages.glob("*.pth") if str(REPO_ROOT) in p.read_text()]
        about = own_project.run("invoke", name, "--about", "--format=json")
        assert about.returncode == 0, about.stderr[-2000:]
        assert json.loads(about.stdout)["name"] == name
        version = own_project.run("invoke", name, "--version")
        assert f"{name} v{package_metadata(name)['version']}," in version.stdout


def check_a_second_run_resumes_from_the_state_meltano_kept(
    own_project: OwnProject, sandbox: SandboxServer
) -> None:
    requests_before = len(sandbox.request_log())
    result = own_project.run("run", "tap-chatra", "target-jsonl")
    assert result.returncode == 0, result.stderr[-3000:]
    clients = len(sandbox.ids("clients"))
    assert (
        f"clients: incremental by ID: resuming from STATE, which holds {clients} IDs"
        in result.stderr
    )
    # Every client was fetched less than client_refresh_hours ago, and none was named since.
    assert sandbox.request_log()[requests_before:] == []


def check_config_test_without_keys_names_the_variable_in_plain_text(
    own_project: OwnProject,
) -> None:
    result = own_project.run("config", "test", "tap-chatra", env={"TAP_CHATRA_API_KEY_PAIR": ""})
    assert result.returncode != 0
    output = result.stdout + result.stderr
    named = [line for line in output.splitlines() if "TAP_CHATRA_API_KEY_PAIR=" in line]
    assert named, output[-3000:]
    assert not [line for line in named if line.lstrip().startswith("{")], named


def check_a_target_chatra_push_dry_run(
    own_project: OwnProject, sandbox: SandboxServer, tmp_path: Path
) -> None:
    clients = sandbox.ids("clients")[:3]
    schema = {
        "type": "object",
        "properties": {"order_id": {"type": "string"}, "client_id": {"type": "string"}},
    }
    messages = [
        {"type": "SCHEMA", "stream": "orders", "schema": schema, "key_properties": ["order_id"]}
    ]
    messages += [
        {"type": "RECORD", "stream": "orders", "record": {"order_id": f"o{n}", "client_id": client}}
        for n, client in enumerate(clients)
    ]
    preview = tmp_path / "preview.jsonl"
    env = {
        "TARGET_CHATRA_PUSH_API_URL": sandbox.api_url,
        "TARGET_CHATRA_PUSH_DRY_RUN": "true",
        "TARGET_CHATRA_PUSH_TEXT_TEMPLATE": "Order {{ order_id }} has shipped",
        "TARGET_CHATRA_PUSH_PREVIEW_PATH": str(preview),
    }
    result = subprocess.run(
        [str(own_project.meltano), "invoke", "target-chatra-push"],
        cwd=own_project.root,
        env={**own_project.env, **env},
        input="".join(json.dumps(message) + "\n" for message in messages),
        capture_output=True,
        text=True,
        timeout=STEP_TIMEOUT,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert len(preview.read_text(encoding="utf-8").splitlines()) == len(clients)
    assert sandbox.sends() == []


def test_the_documented_path_from_meltano_init_to_a_resumed_run(
    tmp_path: Path, meltano_bin: Path, dist: Path, sandbox: SandboxServer
) -> None:
    own_project = follow_the_documented_path(tmp_path / "outside", meltano_bin, dist, sandbox)
    check_each_plugin_is_added_once(own_project)
    check_the_catalog_and_the_run(own_project, sandbox)
    check_the_plugins_come_from_the_wheels_alone(own_project)
    check_a_second_run_resumes_from_the_state_meltano_kept(own_project, sandbox)
    check_config_test_without_keys_names_the_variable_in_plain_text(own_project)
    check_a_target_chatra_push_dry_run(own_project, sandbox, tmp_path)
