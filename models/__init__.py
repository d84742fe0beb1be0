"""What is stored: jobs, their items, the batches they are sent in, and every vendor call; the media
inventory and the retention runs made over it."""

from models.db import make_engine, make_session_factory
from models.inventory import InventoryMedia, InventoryTag, RetentionRun
from models.tables import AccountHalt, Base, Batch, Item, Job, JobCount, RetriedFailure, VendorCall

__all__ = [
    "AccountHalt", "Base", "Batch", "InventoryMedia", "InventoryTag", "Item", "Job", "JobCount", "RetentionRun",
    "RetriedFailure", "VendorCall", "make_engine", "make_session_factory",
]
