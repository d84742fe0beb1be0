"""Vendor operations, one module per vendor, all behind ``worker.vendors.base.Operation``."""

from __future__ import annotations

from worker.vendors.aliyun import DeleteMultipartUpload, DeleteStream
from worker.vendors.base import Operation
from worker.vendors.huawei import DeleteAssets
from worker.vendors.zego import DeleteMedia

OPERATIONS: dict[str, Operation] = {
    op.action: op for op in (DeleteStream(), DeleteMultipartUpload(), DeleteMedia(), DeleteAssets())
}


def operation(action: str) -> Operation:
    return OPERATIONS[action]


__all__ = ["OPERATIONS", "Operation", "operation"]
