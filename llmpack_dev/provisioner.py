"""A small volume provisioner for the test cluster: PVCs of our StorageClass bind as they would on a cloud.

The PV controller in kube-controller-manager marks claims of an external provisioner with
`volume.kubernetes.io/storage-provisioner`; this loop creates a PV for each such pending claim, deletes
released PVs it made (reclaim policy Delete), and grows a PV when its claim asks for more (expansion).
Nothing is stored anywhere: kwok pods never read their volumes.
"""

from __future__ import annotations

import argparse
import logging
import time

from lightkube import Client, KubeConfig
from lightkube.core.exceptions import ApiError
from lightkube.models.core_v1 import (
    HostPathVolumeSource,
    ObjectReference,
    PersistentVolumeClaimStatus,
    PersistentVolumeSpec,
)
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.core_v1 import PersistentVolume, PersistentVolumeClaim

from llmpack.quantity import parse_quantity

PROVISIONER = "llmpack.test/fake-provisioner"
CLAIM_PROVISIONER = "volume.kubernetes.io/storage-provisioner"
log = logging.getLogger("provisioner")


def _provision(client: Client, claim: PersistentVolumeClaim) -> None:
    assert claim.metadata is not None
    assert claim.spec is not None
    assert claim.spec.resources is not None
    size = (claim.spec.resources.requests or {})["storage"]
    pv = PersistentVolume(
        metadata=ObjectMeta(name=f"pvc-{claim.metadata.uid}",
                            annotations={"pv.kubernetes.io/provisioned-by": PROVISIONER}),
        spec=PersistentVolumeSpec(
            capacity={"storage": size},
            accessModes=claim.spec.accessModes,
            persistentVolumeReclaimPolicy="Delete",
            storageClassName=claim.spec.storageClassName,
            hostPath=HostPathVolumeSource(path=f"/var/lib/fake-volumes/{claim.metadata.uid}"),
            claimRef=ObjectReference(namespace=claim.metadata.namespace, name=claim.metadata.name,
                                     uid=claim.metadata.uid, kind="PersistentVolumeClaim", apiVersion="v1"),
        ),
    )
    try:
        client.create(pv)
        log.info("provisioned %s for %s/%s (%s)", pv.metadata.name, claim.metadata.namespace,  # type: ignore[union-attr]
                 claim.metadata.name, size)
    except ApiError as exc:
        if exc.status.code != 409:
            raise


def _expand(client: Client, claim: PersistentVolumeClaim, pv: PersistentVolume) -> None:
    assert claim.metadata is not None
    assert claim.metadata.name is not None
    assert claim.spec is not None
    assert claim.spec.resources is not None
    assert pv.metadata is not None
    assert pv.metadata.name is not None
    assert pv.spec is not None
    want = (claim.spec.resources.requests or {})["storage"]
    if parse_quantity(want) > parse_quantity((pv.spec.capacity or {})["storage"]):
        client.patch(PersistentVolume, pv.metadata.name, {"spec": {"capacity": {"storage": want}}})
    have = ((claim.status.capacity if claim.status else None) or {}).get("storage")
    if have is None or parse_quantity(want) > parse_quantity(have):
        client.patch(PersistentVolumeClaim.Status, claim.metadata.name, {"status": {"capacity": {"storage": want}}},
                     namespace=claim.metadata.namespace)
        log.info("expanded %s/%s to %s", claim.metadata.namespace, claim.metadata.name, want)


def reconcile_once(client: Client) -> None:
    volumes = {pv.metadata.name: pv for pv in client.list(PersistentVolume) if pv.metadata and pv.metadata.name}
    for claim in client.list(PersistentVolumeClaim, namespace="*"):
        meta, status = claim.metadata, claim.status or PersistentVolumeClaimStatus()
        if meta is None or (meta.annotations or {}).get(CLAIM_PROVISIONER) != PROVISIONER:
            continue
        if status.phase == "Pending" and f"pvc-{meta.uid}" not in volumes:
            _provision(client, claim)
        elif status.phase == "Bound" and claim.spec and claim.spec.volumeName in volumes:
            _expand(client, claim, volumes[claim.spec.volumeName])
    for name, pv in volumes.items():
        ours = (pv.metadata.annotations or {}).get("pv.kubernetes.io/provisioned-by") == PROVISIONER  # type: ignore[union-attr]
        if ours and pv.status is not None and pv.status.phase in ("Released", "Failed"):
            client.delete(PersistentVolume, name)
            log.info("deleted released %s", name)


def run(kubeconfig: str, interval: float) -> None:
    client = Client(KubeConfig.from_file(kubeconfig), field_manager="fake-provisioner")
    while True:
        try:
            reconcile_once(client)
        except Exception:  # the API server may be restarting in a test; keep going
            log.exception("provisioner pass failed")
        time.sleep(interval)


def main() -> None:
    parser = argparse.ArgumentParser(description="Bind PVCs of the test cluster's StorageClass to fake PVs.")
    parser.add_argument("--kubeconfig", required=True)
    parser.add_argument("--interval", type=float, default=0.5)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    run(args.kubeconfig, args.interval)


if __name__ == "__main__":
    main()
