"""What is stored: jobs, their items, the batches they are sent in, and every vendor call."""

from models.tables import AccountHalt, Base, Batch, Item, Job, RetriedFailure, VendorCall
from models.db import make_engine, make_session_factory

__all__ = ["AccountHalt", "Base", "Batch", "Item", "Job", "RetriedFailure", "VendorCall", "make_engine", "make_session_factory"]
