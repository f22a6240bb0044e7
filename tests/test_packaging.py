"""compose.yaml is valid Compose and runs real `ledger` commands; the layers import inward only."""

import ast
import subprocess
import sys
from pathlib import Path

from ruamel.yaml import YAML

from api.cli import parser

ROOT = Path(__file__).resolve().parent.parent
CHECK_JSONSCHEMA = str(Path(sys.executable).parent / "check-jsonschema")


def test_compose_file_follows_the_compose_specification():
    result = subprocess.run(
        [CHECK_JSONSCHEMA, "--builtin-schema", "vendor.compose-spec", str(ROOT / "compose.yaml")],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_compose_service_runs_a_real_ledger_command():
    services = YAML(typ="safe").load((ROOT / "compose.yaml").read_text())["services"]
    ledger_services = {name: spec for name, spec in services.items() if "build" in spec}
    assert set(ledger_services) == {"migrate", "api", "worker", "dispatcher", "mock-providers"}
    for name, spec in ledger_services.items():
        command = spec["command"]
        assert command[0] == "ledger", name
        parser().parse_args(command[1:])  # exits on an unknown subcommand or option
        depends = spec.get("depends_on", {})
        assert all(
            condition["condition"] in ("service_healthy", "service_completed_successfully")
            for condition in depends.values()
        ), name
    for name in ("postgres", "redis", "api", "mock-providers"):
        assert "healthcheck" in services[name], name


FORBIDDEN_IMPORTS = {
    "ledger": {"projections", "workers", "api", "mock_providers"},
    "projections": {"workers", "api", "mock_providers"},
    "workers": {"api", "mock_providers"},
    "mock_providers": {"ledger", "projections", "workers", "api"},  # a stand-in for the outside world
}


def imported_packages(package: str) -> set[str]:
    found = set()
    for path in (ROOT / package).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                found.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found.add(node.module.split(".")[0])
    return found


def test_layers_import_inward_only():
    for package, forbidden in FORBIDDEN_IMPORTS.items():
        assert not imported_packages(package) & forbidden, package
