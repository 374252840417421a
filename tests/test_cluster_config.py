"""cluster.yaml against Ray's own cluster-config JSON schema, plus the security settings we promise."""

import json
from pathlib import Path

import jsonschema
import ray
import yaml

ROOT = Path(__file__).resolve().parents[1]


def test_cluster_yaml_is_valid_for_ray_up():
    config = yaml.safe_load((ROOT / "cluster.yaml").read_text())
    schema = json.loads((Path(ray.__file__).parent / "autoscaler" / "ray-schema.json").read_text())
    jsonschema.validate(config, schema)
    assert config["head_node_type"] in config["available_node_types"]


def test_cluster_yaml_security_settings():
    text = (ROOT / "cluster.yaml").read_text()
    config = yaml.safe_load(text)
    assert "--dashboard-host=127.0.0.1" in " ".join(config["head_start_ray_commands"])
    assert all("RAY_AUTH_MODE=token" in " ".join(config[key]) for key in ("head_start_ray_commands", "worker_start_ray_commands"))
    assert config["file_mounts"]["~/.ray/auth_token"] == "~/.ray/auth_token"  # read from a file, never inline
    assert "RAY_AUTH_TOKEN=" not in text
    types = config["available_node_types"]
    assert any("g5" in t["node_config"]["InstanceType"] for t in types.values())  # a GPU worker group
    assert any(t.get("max_workers", 0) > t.get("min_workers", 0) for t in types.values())  # autoscaling
