"""The Kubernetes base stays consistent with the code: consumers, probes, grace period."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from consumers import discover
from libs.settings import Settings


def _documents(base: Path) -> list[dict[str, Any]]:
    kustomization = yaml.safe_load((base / "kustomization.yaml").read_text())
    documents: list[dict[str, Any]] = []
    for resource in kustomization["resources"]:
        documents.extend(d for d in yaml.safe_load_all((base / resource).read_text()) if d)
    return documents


def test_each_worker_deployment_runs_a_discovered_consumer_with_probes(repo_root: Path) -> None:
    documents = _documents(repo_root / "k8s" / "base")
    deployments = [d for d in documents if d["kind"] == "Deployment"]
    scaled = {d["spec"]["scaleTargetRef"]["name"] for d in documents if d["kind"] == "ScaledObject"}
    names = {consumer.name for consumer in discover()}
    grace_s = Settings().shutdown_grace_s
    assert deployments
    for deployment in deployments:
        pod = deployment["spec"]["template"]["spec"]
        [container] = pod["containers"]
        assert container["args"][:2] == ["worker", "--only"]
        assert set(container["args"][2::2]) <= names, "the Deployment runs a known consumer"
        assert container["livenessProbe"]["httpGet"]["path"] == "/health/live"
        assert container["readinessProbe"]["httpGet"]["path"] == "/health/ready"
        assert pod["terminationGracePeriodSeconds"] > grace_s
        assert deployment["metadata"]["name"] in scaled, "every worker kind scales on its lag"
