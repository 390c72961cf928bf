"""A team's own Meltano project, outside this repository, adds both plugins and runs them.

As a new user would: `meltano init` in an empty folder, `meltano add --from-ref` with the
definitions in hub/ (their pip_url pointed at the wheels built from this checkout, the
package index supplying the rest), then `meltano run tap-chatra target-jsonl` against the
sandbox and a dry run of target-chatra-push. Nothing in the plugin venvs comes from the
checkout.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import yaml

from tests.conftest import REPO_ROOT, package_metadata
from tests.e2e.conftest import BIN, MeltanoProject, isolated_environ

if TYPE_CHECKING:
    from chatra_sandbox import SandboxServer
    from tests.e2e.conftest import SandboxSettings

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]

HERE = Path(__file__).resolve().parent / "outside_project"
STREAMS = ("messages", "pushed_messages", "clients")


def wheel(dists: Path, package: str) -> Path:
    (found,) = dists.glob(f"{package.replace('-', '_')}-*.whl")
    return found


def add_from_definition(
    project: MeltanoProject, plugin_type: str, source: Path, pip_url: str
) -> None:
    """`meltano add --from-ref` a copy of `source` whose pip_url is `pip_url`."""
    definition = yaml.safe_load(source.read_text(encoding="utf-8"))
    definition["pip_url"] = pip_url
    copy = project.root.parent / source.name
    copy.write_text(yaml.safe_dump(definition, sort_keys=False), encoding="utf-8")
    project.run("add", "--from-ref", str(copy), plugin_type, definition["name"])


@pytest.fixture(scope="module")
def outside_project(tmp_path_factory: pytest.TempPathFactory, built_dists: Path) -> MeltanoProject:
    folder = tmp_path_factory.mktemp("outside")
    assert not folder.is_relative_to(REPO_ROOT)
    env = isolated_environ(MELTANO_CLI_DISABLE_VERSION_CHECK="true")
    subprocess.run(
        [str(BIN / "meltano"), "init", "--no-usage-stats", "team-project"],
        cwd=folder,
        env=env,
        check=True,
        capture_output=True,
        timeout=120,
    )
    env_file = folder / "empty.env"
    env_file.write_text("", encoding="utf-8")
    project = MeltanoProject(folder / "team-project", env_file, env)
    # The repository's pins keep the third-party dependencies as tested; the Chatra packages
    # themselves come only from the wheels.
    pins = f"-c {REPO_ROOT / 'constraints.txt'}"
    client = wheel(built_dists, "chatra-client")
    for plugin_type, name in (("extractors", "tap-chatra"), ("loaders", "target-chatra-push")):
        pip_url = f"{wheel(built_dists, name)} {client} {pins}"
        add_from_definition(
            project, plugin_type[:-1], REPO_ROOT / "hub" / plugin_type / f"{name}.yml", pip_url
        )
    jsonl = HERE / "target-jsonl.yml"
    add_from_definition(
        project, "loader", jsonl, f"target-jsonl==0.1.4 -c {HERE / 'target-jsonl-constraints.txt'}"
    )
    return project


def test_hub_definitions_install_from_the_wheels_alone(outside_project: MeltanoProject) -> None:
    for plugin_type, name in (("extractors", "tap-chatra"), ("loaders", "target-chatra-push")):
        venv = outside_project.root / ".meltano" / plugin_type / name / "venv"
        (python,) = venv.glob("lib/python*/site-packages")
        installed = {path.name.split("-")[0] for path in python.glob("*.dist-info")}
        assert {"chatra_client", name.replace("-", "_")} <= installed
        # Installed from the wheels, not linked to the checkout (no editable .pth files).
        assert not [path for path in python.glob("*.pth") if str(REPO_ROOT) in path.read_text()]
        version = subprocess.run(
            [str(venv / "bin" / name), "--version"],
            cwd=outside_project.root,
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        ).stdout
        assert version.startswith(f"{name} v{package_metadata(name)['version']},"), version


def test_tap_chatra_to_target_jsonl(
    outside_project: MeltanoProject,
    chatra_sandbox: SandboxServer,
    sandbox_settings: SandboxSettings,
) -> None:
    output = outside_project.root / "output" / "chatra"
    env = {**sandbox_settings.tap(chatra_sandbox), "TARGET_JSONL_DESTINATION_PATH": str(output)}
    outside_project.run("run", "tap-chatra", "target-jsonl", env=env)
    for stream in STREAMS:
        lines = (output / f"{stream}.jsonl").read_text(encoding="utf-8").splitlines()
        assert sorted(json.loads(line)["id"] for line in lines) == sorted(
            chatra_sandbox.ids(stream)
        )


def test_target_chatra_push_dry_run(
    outside_project: MeltanoProject,
    chatra_sandbox: SandboxServer,
    sandbox_settings: SandboxSettings,
) -> None:
    clients = chatra_sandbox.ids("clients")[:3]
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
    env = {
        **sandbox_settings.target(chatra_sandbox),
        "TARGET_CHATRA_PUSH_DRY_RUN": "true",
        "TARGET_CHATRA_PUSH_TEXT_TEMPLATE": "Order {{ order_id }} has shipped",
    }
    result = subprocess.run(
        outside_project.command("invoke", "target-chatra-push"),
        cwd=outside_project.root,
        env=outside_project.environ(env),
        input="".join(json.dumps(message) + "\n" for message in messages),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    preview = Path(env["TARGET_CHATRA_PUSH_PREVIEW_PATH"]).read_text(encoding="utf-8")
    assert len(preview.splitlines()) == len(clients)
    assert chatra_sandbox.sends() == []
